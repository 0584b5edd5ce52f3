package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/secret"
)

// TestRotationByOneNodeOnly starts five engines on one database, all due
// for automatic key rotation at once (an injected clock, not sleeps):
// exactly one rotates, and every node then sees the announced key.
func TestRotationByOneNodeOnly(t *testing.T) {
	dsn, _ := freshSchema(t)
	ctx := context.Background()
	start := time.Now()
	var mu sync.Mutex
	offset := time.Duration(0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return start.Add(offset) }
	cfg := grant.Config{
		Issuer: "http://tokend.test", Alg: "ES256", AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour,
		KeyRotationPeriod: 24 * time.Hour, KeyPrepublish: time.Hour,
	}
	var nodes []*grant.Engine
	for range 5 {
		h, err := secret.NewHasher(secret.Params{MemoryKiB: 1024, Time: 1, Threads: 1}, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		e, err := grant.New(cfg, grant.Deps{Store: open(t, dsn), Hasher: h, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, e)
	}
	mu.Lock()
	offset = 25 * time.Hour
	mu.Unlock()

	var wg sync.WaitGroup
	added := make([][]string, len(nodes))
	for i, e := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if added[i], err = e.RotateDueKeys(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var kids []string
	for _, a := range added {
		kids = append(kids, a...)
	}
	if len(kids) != 1 {
		t.Fatalf("%d nodes rotated (%v), want exactly 1", len(kids), kids)
	}
	for i, e := range nodes {
		if err := e.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, k := range e.Ring().Keys() {
			found = found || k.ID == kids[0]
		}
		if !found {
			t.Fatalf("node %d does not publish the new key", i)
		}
		if k, _ := e.Ring().Signing("ES256", clock()); k.ID == kids[0] {
			t.Fatalf("node %d signs with the new key during pre-publication", i)
		}
	}
}
