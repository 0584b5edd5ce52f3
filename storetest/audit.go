package storetest

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tokend/tokend"
)

// testAuditCount: a merged row keeps how many events it stands for; an
// event that says nothing counts once.
func testAuditCount(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	t0 := now()
	must(t, s.AppendAudit(ctx, []tokend.AuditEvent{
		{At: t0, Event: "login.locked", Subject: "mallory", IP: "192.0.2.9", Outcome: "denied", Count: 999},
		{At: t0.Add(time.Second), Event: "login.locked", Subject: "mallory", IP: "192.0.2.9", Outcome: "denied"},
		{At: t0.Add(2 * time.Second), Event: "login.failed", Subject: "mallory", IP: "192.0.2.9", Outcome: "failure", Count: 1},
	}), "append audit")
	got, err := s.ListAudit(ctx, tokend.AuditFilter{})
	must(t, err, "list audit")
	var counts []int
	for _, e := range got {
		counts = append(counts, e.Count)
	}
	if len(counts) != 3 || counts[0] != 999 || counts[1] != 1 || counts[2] != 1 {
		t.Fatalf("counts %v, want [999 1 1]", counts)
	}
}

// testAuditCappedFields: whatever a caller hands AppendAudit, each text
// field is stored cut to AuditFieldMax bytes on a character boundary, as
// valid UTF-8 without NULs.
func testAuditCappedFields(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	long := strings.Repeat("a", 60<<10)
	// 255 ASCII bytes then a 3-byte character: the cap falls inside it.
	split := strings.Repeat("b", tokend.AuditFieldMax-1) + "€" + "tail"
	ev := tokend.AuditEvent{
		At: now(), Event: "login.locked." + long, Subject: long, ClientID: split, Dialect: long,
		IP: long, Outcome: long, Detail: "bad\xffbyte and\x00nul " + long,
	}
	must(t, s.AppendAudit(ctx, []tokend.AuditEvent{ev}), "append an oversized event")
	got, err := s.ListAudit(ctx, tokend.AuditFilter{})
	must(t, err, "list audit")
	if len(got) != 1 {
		t.Fatalf("%d events, want 1", len(got))
	}
	e := got[0]
	for name, f := range map[string]struct{ got, from string }{
		"event": {e.Event, ev.Event}, "subject": {e.Subject, ev.Subject}, "client_id": {e.ClientID, ev.ClientID},
		"dialect": {e.Dialect, ev.Dialect}, "ip": {e.IP, ev.IP}, "outcome": {e.Outcome, ev.Outcome}, "detail": {e.Detail, ev.Detail},
	} {
		if len(f.got) > tokend.AuditFieldMax || len(f.got) < tokend.AuditFieldMax-3 {
			t.Errorf("%s: %d bytes stored, want at most %d (and not much less)", name, len(f.got), tokend.AuditFieldMax)
		}
		if !utf8.ValidString(f.got) || strings.ContainsRune(f.got, 0) {
			t.Errorf("%s: stored %q is not clean UTF-8", name, f.got)
		}
		if name != "detail" && !strings.HasPrefix(f.from, f.got) {
			t.Errorf("%s: stored %q is not a prefix of what was given", name, f.got)
		}
	}
	if e.ClientID != strings.Repeat("b", tokend.AuditFieldMax-1) {
		t.Errorf("client_id cut inside a character: %q", e.ClientID[len(e.ClientID)-4:])
	}
	if !strings.HasPrefix(e.Detail, "bad\uFFFDbyte and\uFFFDnul aaa") {
		t.Errorf("detail %q: invalid bytes and NULs should read as U+FFFD", e.Detail[:24])
	}
	// The stored subject is what a filter finds.
	if got, err := s.ListAudit(ctx, tokend.AuditFilter{Subject: e.Subject}); err != nil || len(got) != 1 {
		t.Fatalf("by the capped subject: %d events, %v", len(got), err)
	}
}

// testAuditPurge: PurgeAudit deletes what is older than the retention
// limit, and nothing newer.
func testAuditPurge(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	t0 := now()
	var events []tokend.AuditEvent
	for i := range 5 {
		events = append(events, tokend.AuditEvent{At: t0.Add(-time.Duration(100+i) * 24 * time.Hour), Event: "token.issued", Subject: "old", Outcome: "success"})
	}
	events = append(events,
		tokend.AuditEvent{At: t0.Add(-89 * 24 * time.Hour), Event: "token.issued", Subject: "recent", Outcome: "success"},
		tokend.AuditEvent{At: t0, Event: "login.failed", Subject: "recent", Outcome: "failure", Count: 3},
	)
	must(t, s.AppendAudit(ctx, events), "append audit")
	n, err := s.PurgeAudit(ctx, t0.Add(-90*24*time.Hour))
	must(t, err, "purge audit")
	if n != 5 {
		t.Errorf("purged %d events, want 5", n)
	}
	got, err := s.ListAudit(ctx, tokend.AuditFilter{})
	must(t, err, "list audit")
	if len(got) != 2 || got[0].Subject != "recent" || got[1].Count != 3 {
		t.Fatalf("after the purge: %+v", got)
	}
	if n, err := s.PurgeAudit(ctx, t0.Add(-90*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second purge: %d, %v", n, err)
	}
}

func testAuditAppendAndList(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	if got, err := s.ListAudit(ctx, tokend.AuditFilter{}); err != nil || len(got) != 0 {
		t.Fatalf("empty trail: %v %v", got, err)
	}
	if err := s.AppendAudit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	events := []tokend.AuditEvent{
		{At: t0, Event: "login.failed", Subject: "alice", Dialect: "oauth", IP: "192.0.2.1", Outcome: "failure"},
		{At: t0.Add(time.Second), Event: "token.issued", Subject: "alice", ClientID: "c1", Dialect: "oauth", IP: "192.0.2.1", Outcome: "success", Detail: "grant=password"},
		{At: t0.Add(2 * time.Second), Event: "token.issued", Subject: "svc", ClientID: "svc", Dialect: "taiki", Outcome: "success"},
	}
	if err := s.AppendAudit(ctx, events); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListAudit(ctx, tokend.AuditFilter{})
	if err != nil || len(all) != 3 {
		t.Fatalf("list: %v %v", all, err)
	}
	for i, e := range all {
		want := events[i]
		want.Seq, want.Count = e.Seq, 1 // a single event counts once
		if e.Seq == 0 || !e.At.Equal(want.At) {
			t.Fatalf("event %d: %+v", i, e)
		}
		e.At, want.At = time.Time{}, time.Time{}
		if e != want {
			t.Fatalf("event %d: got %+v, want %+v", i, e, want)
		}
	}
	if all[0].Seq >= all[1].Seq {
		t.Fatal("seqs must grow")
	}
	if got, _ := s.ListAudit(ctx, tokend.AuditFilter{Subject: "alice"}); len(got) != 2 {
		t.Fatalf("by subject: %d", len(got))
	}
	if got, _ := s.ListAudit(ctx, tokend.AuditFilter{Since: t0.Add(time.Second)}); len(got) != 2 || got[0].Event != "token.issued" {
		t.Fatalf("since: %v", got)
	}
	if got, _ := s.ListAudit(ctx, tokend.AuditFilter{Limit: 1}); len(got) != 1 || got[0].Event != "login.failed" {
		t.Fatalf("limit: %v", got)
	}
}
