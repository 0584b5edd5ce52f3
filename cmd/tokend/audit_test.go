package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/sqlite"
)

// TestAuditListCount: `audit list` shows how many events a merged row
// stands for, in its table and in --json.
func TestAuditListCount(t *testing.T) {
	f := newFixture(t)
	at := time.Now().UTC().Add(-time.Minute)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.store().AppendAudit(context.Background(), []tokend.AuditEvent{
		{At: at, Event: "login.locked", Subject: "mallory", IP: "192.0.2.7", Dialect: "oauth", Outcome: "denied"},
		{At: at.Add(time.Second), Event: "login.locked", Subject: "mallory", IP: "192.0.2.7", Dialect: "oauth", Outcome: "denied", Count: 4242},
	}))
	events := decodeOne[[]map[string]any](t, f.must("", "audit", "list", "--json"))
	if len(events) != 2 || events[0]["count"] != 1.0 || events[1]["count"] != 4242.0 {
		t.Fatalf("--json: %v", events)
	}
	out := f.must("", "audit", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "COUNT") || !strings.Contains(lines[2], " 4242 ") {
		t.Fatalf("text output:\n%s", out)
	}
}

// TestServeAuditRetention: the server deletes audit events older than
// --audit-retention (here from its environment twin), and keeps the rest.
func TestServeAuditRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	hermeticEnv(t)
	for _, bad := range [][]string{{"--audit-retention", "-1h"}, {"--audit-window", "-1s"}} {
		_, _, err := runCLI(t, "", append([]string{"serve", "--db", "sqlite:" + filepath.Join(t.TempDir(), "x.db")}, bad...)...)
		wantUsageError(t, err)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = st.AppendAudit(context.Background(), []tokend.AuditEvent{
		{At: now.Add(-11 * 24 * time.Hour), Event: "token.issued", Subject: "old", Outcome: "success"}, // the default 90 days would keep it
		{At: now.Add(-9 * 24 * time.Hour), Event: "token.issued", Subject: "kept", Outcome: "success"},
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOKEND_AUDIT_RETENTION", "240h")
	s := startServer(t, dir)
	st, err = sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		events, err := st.ListAudit(context.Background(), tokend.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 1 && events[0].Subject == "kept" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit events after the purge: %+v\n%s", events, s.Logs())
		}
	}
}

// TestAuditList: what the management commands do is in the audit trail,
// and `audit list` reads it back, filtered.
func TestAuditList(t *testing.T) {
	f := newFixture(t)
	f.must("pw\n", "user", "add", "alice", "--password-stdin", "--argon2-memory", "1024", "--argon2-time", "1")
	c := decodeOne[map[string]string](t, f.must("", "client", "add", "svc", "--json"))
	f.must("", "client", "rotate-secret", c["client_id"], "--overlap", "1m")
	f.must("", "key", "rotate")
	f.must("", "user", "disable", "alice")

	events := decodeOne[[]map[string]any](t, f.must("", "audit", "list", "--json"))
	var names []string
	for _, e := range events {
		names = append(names, e["event"].(string))
		if e["dialect"] != "cli" || e["actor"] != "cli" || e["outcome"] != "success" || e["at"] == "" {
			t.Errorf("event %v", e)
		}
		if strings.Contains(fmt.Sprint(e), c["client_secret"]) {
			t.Fatal("an audit event carries the client secret")
		}
	}
	if want := []string{"user.created", "client.created", "client.secret_rotated", "key.rotated", "user.disabled"}; !slices.Equal(names, want) {
		t.Fatalf("events %v, want %v", names, want)
	}
	bySubject := decodeOne[[]map[string]any](t, f.must("", "audit", "list", "--json", "--subject", c["client_id"]))
	if len(bySubject) != 2 || bySubject[1]["event"] != "client.secret_rotated" {
		t.Fatalf("--subject: %v", bySubject)
	}
	if got := decodeOne[[]map[string]any](t, f.must("", "audit", "list", "--json", "--since", "2999-01-01T00:00:00Z")); len(got) != 0 {
		t.Fatalf("--since in the future: %v", got)
	}
	if got := decodeOne[[]map[string]any](t, f.must("", "audit", "list", "--json", "--since", "1h", "--limit", "1")); len(got) != 1 {
		t.Fatalf("--limit 1: %v", got)
	}
	if out := f.must("", "audit", "list"); !strings.Contains(out, "key.rotated") || !strings.Contains(out, "EVENT") {
		t.Fatalf("text output: %s", out)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--limit", "0"}} {
		_, _, err := f.run("", append([]string{"audit", "list"}, bad...)...)
		wantUsageError(t, err)
	}
}
