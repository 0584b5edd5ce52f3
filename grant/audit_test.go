package grant_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/sqlite"
	"github.com/tokend/tokend/tokendtest"
)

// auditRig is an auditor running on a real SQLite file, with a settable clock.
type auditRig struct {
	t       *testing.T
	store   *sqlite.Store
	clock   *tokendtest.Clock
	metrics *metrics.Metrics
	a       *grant.Auditor
}

func newAuditRig(t *testing.T, opts grant.AuditOptions, wrap func(tokend.Store) tokend.Store) *auditRig {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	r := &auditRig{t: t, store: store, clock: &tokendtest.Clock{}, metrics: metrics.New()}
	opts.Now = r.clock.Now
	var s tokend.Store = store
	if wrap != nil {
		s = wrap(store)
	}
	r.a = grant.NewAuditor(s, nil, r.metrics, opts)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.a.Run(ctx, 5*time.Millisecond); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	return r
}

func (r *auditRig) record(event, subject, ip, outcome string) {
	r.a.Record(tokend.AuditEvent{At: r.clock.Now(), Event: event, Subject: subject, IP: ip, Dialect: "oauth", Outcome: outcome})
}

func (r *auditRig) list() []tokend.AuditEvent {
	r.t.Helper()
	events, err := r.store.ListAudit(context.Background(), tokend.AuditFilter{Limit: 100000})
	if err != nil {
		r.t.Fatal(err)
	}
	return events
}

// dropped reads tokend_audit_dropped_total.
func (r *auditRig) dropped() int {
	r.t.Helper()
	families, err := r.metrics.Registry.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "tokend_audit_dropped_total" {
			return int(f.GetMetric()[0].GetCounter().GetValue())
		}
	}
	r.t.Fatal("no tokend_audit_dropped_total")
	return 0
}

// rows sums the stored rows by event, subject and IP: how many rows, and
// how many events they stand for.
func rows(events []tokend.AuditEvent) (n, count map[string]int) {
	n, count = map[string]int{}, map[string]int{}
	for _, e := range events {
		k := e.Event + " " + e.Subject + " " + e.IP
		n[k]++
		count[k] += e.Count
	}
	return n, count
}

// TestAuditCoalescing: repeats of a refusal within the window become one
// row with their count; other subjects or addresses, and successes, keep
// rows of their own.
func TestAuditCoalescing(t *testing.T) {
	r := newAuditRig(t, grant.AuditOptions{Window: time.Minute}, nil)
	for range 500 {
		r.record("login.locked", "mallory", "192.0.2.1", "denied")
	}
	for range 50 {
		r.record("login.locked", "mallory", "192.0.2.2", "denied")
		r.record("login.locked", "trudy", "192.0.2.1", "denied")
		r.record("client.auth_failed", "mallory", "192.0.2.1", "failure")
		r.record("ip.throttled", "", "192.0.2.1", "denied")
	}
	for range 20 {
		r.record("token.issued", "alice", "192.0.2.1", "success")
	}
	r.a.Flush(context.Background())
	n, count := rows(r.list())
	for _, c := range []struct {
		key          string
		rows, events int
	}{
		{"login.locked mallory 192.0.2.1", 2, 500}, // the first at once, then one row for the 499 repeats
		{"login.locked mallory 192.0.2.2", 2, 50},
		{"login.locked trudy 192.0.2.1", 2, 50},
		{"client.auth_failed mallory 192.0.2.1", 2, 50},
		{"ip.throttled  192.0.2.1", 2, 50},
		{"token.issued alice 192.0.2.1", 20, 20}, // successes are never merged
	} {
		if n[c.key] != c.rows || count[c.key] != c.events {
			t.Errorf("%s: %d rows for %d events, want %d rows for %d", c.key, n[c.key], count[c.key], c.rows, c.events)
		}
	}
	if d := r.dropped(); d != 0 {
		t.Errorf("%d events dropped", d)
	}

	// After the window, the next refusal is written at once again, and
	// the repeats that follow are written when their window closes,
	// without a Flush.
	r.clock.Advance(2 * time.Minute)
	r.record("login.locked", "mallory", "192.0.2.1", "denied")
	r.record("login.locked", "mallory", "192.0.2.1", "denied")
	r.record("login.locked", "mallory", "192.0.2.1", "denied")
	waitFor(t, "the first refusal of a new window", func() bool {
		n, _ := rows(r.list())
		return n["login.locked mallory 192.0.2.1"] == 3
	})
	r.clock.Advance(2 * time.Minute)
	waitFor(t, "the repeats when the window closes", func() bool {
		n, count := rows(r.list())
		return n["login.locked mallory 192.0.2.1"] == 4 && count["login.locked mallory 192.0.2.1"] == 503
	})
	waitFor(t, "the auditor to hold nothing", func() bool { return r.a.Stats() == grant.AuditStats{} })
}

// TestAuditCoalescingTableBounded: the table of refusals being merged
// stays within its bound however many distinct refusals arrive; the
// oldest merge is written out early, and no event is lost.
func TestAuditCoalescingTableBounded(t *testing.T) {
	const bound = 16 << 10
	r := newAuditRig(t, grant.AuditOptions{Window: time.Hour, MaxGroupBytes: bound}, nil)
	const subjects, repeats = 300, 5
	for i := range subjects {
		for range repeats {
			r.record("login.failed", fmt.Sprintf("user-%03d-%s", i, strings.Repeat("x", 60<<10)), "192.0.2.1", "failure")
			if s := r.a.Stats(); s.GroupBytes > bound {
				t.Fatalf("merge table holds %d bytes, over its bound of %d", s.GroupBytes, bound)
			}
		}
	}
	if s := r.a.Stats(); s.Groups >= subjects || s.Groups == 0 {
		t.Fatalf("merge table holds %d groups", s.Groups)
	}
	r.a.Flush(context.Background())
	events := r.list()
	total := 0
	for _, e := range events {
		total += e.Count
		if len(e.Subject) > tokend.AuditFieldMax {
			t.Fatalf("subject of %d bytes stored", len(e.Subject))
		}
	}
	if total != subjects*repeats || len(events) != 2*subjects {
		t.Fatalf("%d rows for %d events, want %d rows for %d", len(events), total, 2*subjects, subjects*repeats)
	}
}

// gatedStore holds every AppendAudit until the gate opens, as a store
// that has stopped answering would, and reports each call.
type gatedStore struct {
	tokend.Store
	gate   chan struct{}
	opened sync.Once
	calls  chan []tokend.AuditEvent
}

func newGatedStore() *gatedStore {
	return &gatedStore{gate: make(chan struct{}), calls: make(chan []tokend.AuditEvent, 10000)}
}

func (s *gatedStore) open() { s.opened.Do(func() { close(s.gate) }) }

func (s *gatedStore) wrap(st tokend.Store) tokend.Store {
	s.Store = st
	return s
}

func (s *gatedStore) AppendAudit(ctx context.Context, events []tokend.AuditEvent) error {
	select {
	case s.calls <- slices.Clone(events):
	default:
	}
	select {
	case <-s.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.AppendAudit(ctx, events)
}

// TestAuditByteBound: while the store does not answer, the events held
// stay within the byte bound, the rest are dropped and counted; security
// events are never dropped: they wait in the reserved lane, and past it
// the request that records one writes it itself.
func TestAuditByteBound(t *testing.T) {
	const maxBytes, reserved = 64 << 10, 4
	gs := newGatedStore()
	r := newAuditRig(t, grant.AuditOptions{MaxBytes: maxBytes, Reserved: reserved, Window: -1}, gs.wrap)
	t.Cleanup(gs.open) // before the auditor stops, should the test end early
	huge := strings.Repeat("x", 60<<10)
	failure := func(i int) {
		r.record("login.failed", fmt.Sprintf("user-%05d-%s", i, huge), "192.0.2.1", "failure")
		if s := r.a.Stats(); s.Bytes > maxBytes {
			t.Fatalf("after %d events the auditor holds %d bytes, over its bound of %d", i+1, s.Bytes, maxBytes)
		}
	}
	// A first batch reaches the store and hangs there.
	for i := range 10 {
		failure(i)
	}
	<-gs.calls
	const total = 3000
	for i := 10; i < total; i++ {
		failure(i)
	}
	if r.dropped() == 0 {
		t.Fatal("nothing dropped although the store did not answer")
	}

	// Security events: what room is left in the queue, then the reserved
	// lane, takes them at once...
	want := map[string]int{"account.locked ": 1}
	for i := 0; r.a.Stats().Reserved < reserved; i++ {
		if i > 1000 {
			t.Fatalf("the reserved lane never filled: %+v", r.a.Stats())
		}
		detail := fmt.Sprintf("kid=k%d", i)
		r.a.Record(tokend.AuditEvent{At: r.clock.Now(), Event: "key.rotated", Outcome: "success", Detail: detail})
		want["key.rotated "+detail] = 1
		if s := r.a.Stats(); s.Bytes > maxBytes {
			t.Fatalf("after a security event the auditor holds %d bytes, over its bound", s.Bytes)
		}
	}
	// ...and the next is written by its caller, who waits for the store.
	recorded := make(chan struct{})
	go func() {
		r.a.Record(tokend.AuditEvent{At: r.clock.Now(), Event: "account.locked", Subject: "alice", IP: "192.0.2.1", Outcome: "denied"})
		close(recorded)
	}()
	for call := range gs.calls {
		if len(call) == 1 && call[0].Event == "account.locked" {
			break
		}
	}
	select {
	case <-recorded:
		t.Fatal("Record returned before the store took the security event")
	default:
	}
	gs.open()
	<-recorded
	r.a.Flush(context.Background())

	events := r.list()
	failures, security := 0, map[string]int{}
	for _, e := range events {
		if e.Event == "login.failed" {
			failures += e.Count
		} else {
			security[e.Event+" "+e.Detail]++
		}
	}
	if failures+r.dropped() != total {
		t.Errorf("%d failures stored and %d dropped, want %d in all", failures, r.dropped(), total)
	}
	if failures < 50 {
		t.Errorf("only %d failures stored: the bound should count the capped events, not the raw ones", failures)
	}
	if !maps.Equal(security, want) {
		t.Errorf("security events stored %v, want %v", security, want)
	}
	if s := r.a.Stats(); s.Bytes != 0 || s.Reserved != 0 {
		t.Errorf("after the flush the auditor still holds %+v", s)
	}
}

// TestAuditSecurityEventsNeverDropped: however many arrive while the store
// is slow, every security event is stored (coalesced ones with their count).
func TestAuditSecurityEventsNeverDropped(t *testing.T) {
	gs := newGatedStore()
	r := newAuditRig(t, grant.AuditOptions{MaxBytes: 4 << 10, Reserved: 2}, gs.wrap)
	t.Cleanup(gs.open) // before the auditor stops, should the test end early
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r.record("refresh.reuse_detected", fmt.Sprintf("user-%d", i), "192.0.2.1", "denied")
			r.record("ip.throttled", "", fmt.Sprintf("192.0.2.%d", i), "denied")
			r.record("ip.throttled", "", fmt.Sprintf("192.0.2.%d", i), "denied")
			r.record("login.failed", fmt.Sprintf("user-%d", i), "192.0.2.1", "failure")
		})
	}
	// Let the writers block on the store, then let it answer.
	for range 3 {
		<-gs.calls
	}
	gs.open()
	wg.Wait()
	r.a.Flush(context.Background())
	_, count := rows(r.list())
	reuse, throttled := 0, 0
	for k, c := range count {
		switch {
		case strings.HasPrefix(k, "refresh.reuse_detected "):
			reuse += c
		case strings.HasPrefix(k, "ip.throttled "):
			throttled += c
		}
	}
	if reuse != n || throttled != 2*n {
		t.Fatalf("stored %d reuse detections and %d throttlings, want %d and %d", reuse, throttled, n, 2*n)
	}
}

// TestAuditRetention: the engine's hourly purge deletes the audit events
// older than the retention.
func TestAuditRetention(t *testing.T) {
	e := tokendtest.New(t, tokendtest.Options{Config: func(c *grant.Config) { c.AuditRetention = 30 * 24 * time.Hour }})
	ctx := context.Background()
	now := e.Clock.Now()
	if err := e.Store.AppendAudit(ctx, []tokend.AuditEvent{
		{At: now.Add(-31 * 24 * time.Hour), Event: "token.issued", Subject: "old", Outcome: "success"},
		{At: now.Add(-29 * 24 * time.Hour), Event: "token.issued", Subject: "kept", Outcome: "success"},
	}); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.Engine.Watch(wctx, 5*time.Millisecond, nil); close(done) }()
	defer func() { stop(); <-done }()
	waitFor(t, "the purge of old audit events", func() bool {
		events, err := e.Store.ListAudit(ctx, tokend.AuditFilter{})
		return err == nil && len(events) == 1 && events[0].Subject == "kept"
	})

	if _, err := grant.New(grant.Config{Issuer: "x", Alg: "ES256", AccessTTL: time.Minute, RefreshTTL: time.Hour, AuditRetention: -time.Hour},
		grant.Deps{Store: e.Store, Hasher: nil}); err == nil || !strings.Contains(err.Error(), "audit retention") {
		t.Fatalf("a negative retention: %v", err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
