package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// binResult is what a shell sees of one run of a binary.
type binResult struct {
	code           int
	stdout, stderr string
}

// cleanEnv is the test process's environment without any TOKEND_ variable
// (a developer's shell must not change what the binary does), plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKEND_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runBinary runs bin with args in a clean environment (plus env) and
// returns its exit status and output; it fails the test only when the
// binary cannot be run at all.
func runBinary(t *testing.T, bin string, env []string, stdin string, args ...string) binResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %s %v: %v", bin, args, err)
	}
	return binResult{cmd.ProcessState.ExitCode(), out.String(), errOut.String()}
}

// mustBinary runs bin and fails the test unless it exits 0; it returns stdout.
func mustBinary(t *testing.T, bin string, stdin string, args ...string) string {
	t.Helper()
	r := runBinary(t, bin, nil, stdin, args...)
	if r.code != 0 {
		t.Fatalf("tokend %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// rtSession reads the session id and counter out of a refresh token
// ("rt1_" + base64url(session id | counter | MAC), grant/refresh.go).
func rtSession(t *testing.T, rt string) (sid string, counter int64) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(rt, "rt1_"))
	if err != nil || len(b) < 24 {
		t.Fatalf("not a refresh token: %q", rt)
	}
	id, err := uuid.FromBytes(b[:16])
	if err != nil {
		t.Fatal(err)
	}
	return id.String(), int64(binary.BigEndian.Uint64(b[16:24]))
}

// opsFixture is what the operations tests provision with the CLI.
type opsFixture struct {
	svcID, svcSecret string // a confidential client: client_credentials, password, refresh_token
	webID            string // a public client
	users            []string
}

func (f opsFixture) password(user string) string { return "pw-of-" + user }

// provisionOps creates the clients and n users (cheap hashes) with the
// binary's CLI against s's store.
func provisionOps(t *testing.T, s *server, n int) opsFixture {
	t.Helper()
	var f opsFixture
	var m map[string]any
	if err := json.Unmarshal([]byte(s.cli(t, "", "client", "add", "svc", "--grant", "client_credentials", "--grant", "password", "--grant", "refresh_token", "--json")), &m); err != nil {
		t.Fatal(err)
	}
	f.svcID, _ = m["client_id"].(string)
	f.svcSecret, _ = m["client_secret"].(string)
	if err := json.Unmarshal([]byte(s.cli(t, "", "client", "add", "web", "--public", "--json")), &m); err != nil {
		t.Fatal(err)
	}
	f.webID, _ = m["client_id"].(string)
	for i := range n {
		name := "user" + string(rune('a'+i))
		s.cli(t, f.password(name)+"\n", append([]string{"user", "add", name, "--password-stdin"}, cheapArgon...)...)
		f.users = append(f.users, name)
	}
	return f
}

func (s *server) loginAs(f opsFixture, user string) httpResult {
	return s.post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {f.password(user)}, "client_id": {f.webID}}, "", "")
}

func (s *server) introspect(f opsFixture, tok string) httpResult {
	return s.post("/oauth2/introspect", url.Values{"token": {tok}}, f.svcID, f.svcSecret)
}

// openDB opens a SQLite file directly, to look at what a test left in it.
func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// queryInt runs a query that returns one number.
func queryInt(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
