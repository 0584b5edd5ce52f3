package httpapi_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// TestLockedAccountFloodKeepsTheTrailSmall: once an account is locked,
// every refused login used to write an audit row with the whole attempted
// username (up to a request body); one address could grow the store by
// hundreds of megabytes in seconds. Now the refusals of one window make
// one row with their count, and each field is capped.
func TestLockedAccountFloodKeepsTheTrailSmall(t *testing.T) {
	e := newEnv(t, withLimits(grant.Limits{LockoutThreshold: 3, LockoutBase: time.Minute, LockoutMax: time.Minute}))
	ctx := context.Background()
	username := "ghost-" + strings.Repeat("g", 60<<10) // no such user
	for range 3 {
		wantOAuthError(t, e.password(username, "wrong"), 400, "invalid_grant")
	}
	wantOAuthError(t, e.password(username, "wrong"), 429, "invalid_grant") // locked
	e.Auditor.Flush(ctx)
	before := e.storeBytes()

	const flood = 1000
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	work := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for range work {
				r := e.password(username, "wrong")
				mu.Lock()
				statuses[r.Status]++
				mu.Unlock()
			}
		})
	}
	for range flood {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	if statuses[429] != flood {
		t.Fatalf("statuses %v, want %d refusals", statuses, flood)
	}
	e.Auditor.Flush(ctx)
	if grown := e.storeBytes() - before; grown >= 1<<20 {
		t.Fatalf("the store grew by %d bytes for %d refused logins", grown, flood)
	}

	// The events name the account by a keyed hash, never by the typed name.
	events, err := e.Store.ListAudit(ctx, tokend.AuditFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	rows, locked := 0, 0
	for _, ev := range events {
		if strings.Contains(ev.Subject+ev.Detail, "ghost-") {
			t.Fatalf("an audit event stores the typed username: %.80s", ev.Subject)
		}
		if ev.Event == "login.locked" {
			rows++
			locked += ev.Count
		}
	}
	if locked != flood+1 || rows > 3 {
		t.Fatalf("%d login.locked rows standing for %d refusals, want a few rows for %d", rows, locked, flood+1)
	}
}

// storeBytes is the size of the SQLite file and its write-ahead log.
func (e *env) storeBytes() int64 {
	e.t.Helper()
	var n int64
	for _, f := range []string{e.DBFile, e.DBFile + "-wal"} {
		fi, err := os.Stat(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			e.t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}
