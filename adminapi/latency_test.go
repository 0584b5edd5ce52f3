package adminapi_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

// TestListLatency measures GET /admin/v1/users through real HTTP on
// SQLite with many users: the first page and page 50 (default limit), p50
// and p99 of many requests each. It runs only when
// TOKEND_BENCH_ADMIN_USERS names how many users to create, e.g.
//
//	TOKEND_BENCH_ADMIN_USERS=100000 go test -run TestListLatency -v ./adminapi/
//
// and asserts nothing about the figures (BENCHMARKS.md reports them).
func TestListLatency(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TOKEND_BENCH_ADMIN_USERS"))
	if n <= 0 {
		t.Skip("set TOKEND_BENCH_ADMIN_USERS to measure")
	}
	requests := 1000
	if v, err := strconv.Atoi(os.Getenv("TOKEND_BENCH_ADMIN_REQUESTS")); err == nil && v > 0 {
		requests = v
	}
	store := openSQLite(t)
	start := time.Now()
	for i := range n {
		u := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: fmt.Sprintf("user-%07d", i), Roles: []string{"reader"},
			Claims: map[string]any{"dept": "ops"}, CreatedAt: time.Now()}
		if err := store.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("created %d users in %s", n, time.Since(start).Round(time.Millisecond))
	e := newEnv(t, store)

	cursor := ""
	for range 49 {
		cursor = e.must(200, "GET", "/admin/v1/users?cursor="+url.QueryEscape(cursor), "").str("next_cursor")
	}
	for _, tc := range []struct{ name, path string }{
		{"first page", "/admin/v1/users"},
		{"page 50", "/admin/v1/users?cursor=" + url.QueryEscape(cursor)},
		{"first page, limit=1000", "/admin/v1/users?limit=1000"},
		{"search q=1234 (a scan)", "/admin/v1/users?q=1234"},
	} {
		for range 50 { // warm up
			e.must(200, "GET", tc.path, "")
		}
		d := make([]time.Duration, requests)
		for i := range d {
			t0 := time.Now()
			r := e.call("GET", tc.path, "")
			d[i] = time.Since(t0)
			if r.status != 200 || len(r.items()) == 0 {
				t.Fatalf("%s: %d", tc.name, r.status)
			}
		}
		slices.Sort(d)
		t.Logf("%-24s %d users: p50 %v  p99 %v  (%d requests, one at a time)", tc.name, n, d[len(d)/2].Round(time.Microsecond), d[len(d)*99/100].Round(time.Microsecond), requests)
	}
}
