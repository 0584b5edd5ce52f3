package main

import (
	"context"
	"path/filepath"
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
