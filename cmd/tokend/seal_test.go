package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/keys"
)

// launchServer starts `tokend serve` like startServer but does not wait
// for it, so that several nodes can start at once; waitUp waits.
func launchServer(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	s := &server{addr: freeAddr(t), dir: dir, bin: tokendBinary(t), done: make(chan error, 1), logs: &strings.Builder{}}
	s.db = "sqlite:" + filepath.Join(dir, "tokend.db")
	for i, a := range args {
		if a == "--db" && i+1 < len(args) {
			s.db = args[i+1]
		}
	}
	s.cmd = exec.Command(s.bin, append([]string{"serve", "--addr", s.addr, "--db", s.db}, args...)...)
	s.cmd.Env = append(os.Environ(), "TOKEND_DIALECTS=")
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logMu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.logMu.Unlock()
		}
		s.done <- s.cmd.Wait()
	}()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	return s
}

func (s *server) waitUp(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get("http://" + s.addr + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		select {
		case err := <-s.done:
			t.Fatalf("tokend exited: %v\n%s", err, s.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tokend did not start\n%s", s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the server with SIGTERM and waits for it.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatal("tokend did not stop")
	}
}

// serveFails runs `tokend serve` and expects it to exit with an error
// before it listens; it returns what the process printed.
func serveFails(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tokendBinary(t), append([]string{"serve", "--addr", freeAddr(t)}, args...)...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "TOKEND_DIALECTS=")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("tokend serve %v did not exit:\n%s", args, out)
	}
	if err == nil {
		t.Fatalf("tokend serve %v succeeded:\n%s", args, out)
	}
	return string(out)
}

// sealedLog returns how many values a node's log says it sealed on start.
var sealedLine = regexp.MustCompile(`msg="sealed secrets that were stored in the clear with the master key" count=(\d+)`)

func sealedCount(t *testing.T, s *server) int {
	t.Helper()
	n := 0
	for _, m := range sealedLine.FindAllStringSubmatch(s.Logs(), -1) {
		c, _ := strconv.Atoi(m[1])
		n += c
	}
	return n
}

// rawSecrets are the rows a master key seals, read behind tokend's back:
// every signing key's private part by kid, and the refresh-token key.
type rawSecrets struct {
	keys       map[string][]byte
	refreshKey []byte
}

func (r rawSecrets) count() int { return len(r.keys) + 1 }

// wantSealed fails t unless every value is sealed exactly once under v
// (in the clear when v is nil), and returns the opened values.
func (r rawSecrets) wantSealed(t *testing.T, v *keys.Vault) map[string]string {
	t.Helper()
	if len(r.keys) == 0 || len(r.refreshKey) == 0 {
		t.Fatalf("the store holds %d keys and a refresh-token key of %d bytes", len(r.keys), len(r.refreshKey))
	}
	plain := map[string]string{}
	check := func(label string, b []byte) []byte {
		if keys.IsSealed(b) != (v != nil) {
			t.Fatalf("%s: sealed = %v, want %v", label, keys.IsSealed(b), v != nil)
		}
		p, err := v.Open(label, b)
		if err != nil {
			t.Fatalf("%s does not open: %v", label, err)
		}
		if keys.IsSealed(p) {
			t.Fatalf("%s is sealed twice", label)
		}
		plain[label] = string(p)
		return p
	}
	for kid, b := range r.keys {
		if _, err := x509.ParsePKCS8PrivateKey(check(kid, b)); err != nil {
			t.Fatalf("key %s opens to no private key: %v", kid, err)
		}
	}
	if p := check("refresh_token_key", r.refreshKey); len(p) != 32 {
		t.Fatalf("the refresh-token key opens to %d bytes", len(p))
	}
	return plain
}

func sqliteSecrets(t *testing.T, path string) rawSecrets {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := rawSecrets{keys: map[string][]byte{}}
	rows, err := db.Query(`SELECT kid, private_key FROM signing_keys`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var kid string
		var b []byte
		if err := rows.Scan(&kid, &b); err != nil {
			t.Fatal(err)
		}
		r.keys[kid] = b
	}
	rows.Close()
	if err := db.QueryRow(`SELECT value FROM settings WHERE name = 'refresh_token_key'`).Scan(&r.refreshKey); err != nil {
		t.Fatal(err)
	}
	return r
}

func postgresSecrets(t *testing.T, dsn string) rawSecrets {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	r := rawSecrets{keys: map[string][]byte{}}
	rows, _ := conn.Query(ctx, `SELECT kid, private_key FROM signing_keys`)
	for rows.Next() {
		var kid string
		var b []byte
		if err := rows.Scan(&kid, &b); err != nil {
			t.Fatal(err)
		}
		r.keys[kid] = b
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT value FROM settings WHERE name = 'refresh_token_key'`).Scan(&r.refreshKey); err != nil {
		t.Fatal(err)
	}
	return r
}

// wantWorks checks a node with tokens issued earlier: the access token is
// still active, the refresh token still refreshes (it returns the new
// one), and the node issues and verifies new tokens.
func (s *server) wantWorks(t *testing.T, f nodeFixture, access, refresh string) string {
	t.Helper()
	r := s.post("/oauth2/introspect", url.Values{"token": {access}}, f.clientID, f.clientSecret)
	if r.status != 200 || r.body["active"] != true {
		t.Fatalf("introspect an earlier access token: %d %v %v\n%s", r.status, r.body, r.err, s.Logs())
	}
	r = s.refresh(refresh, f.publicID)
	if r.status != 200 || r.str("refresh_token") == "" {
		t.Fatalf("refresh an earlier refresh token: %d %v %v\n%s", r.status, r.body, r.err, s.Logs())
	}
	cc := s.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, f.clientSecret)
	if cc.status != 200 {
		t.Fatalf("client_credentials: %d %v", cc.status, cc.body)
	}
	if r := s.post("/oauth2/introspect", url.Values{"token": {cc.str("access_token")}}, f.clientID, f.clientSecret); r.body["active"] != true {
		t.Fatalf("introspect a new token: %v", r.body)
	}
	return r.str("refresh_token")
}

// TestMasterKeyAddedLater: a store made without a master key, then served
// with one, has every signing key and the refresh-token key sealed, and
// what was issued before keeps working; tokend key reseal then moves the
// store to another key, after which the old key is refused.
func TestMasterKeyAddedLater(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	hermeticEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	oldFile, oldVault := newMasterKey(t, dir, "old.key")
	newFile, newVault := newMasterKey(t, dir, "new.key")

	// One issuer for every start: a node's default issuer is its address.
	a := launchServer(t, dir, "--issuer", clusterIssuer)
	a.waitUp(t)
	f := provision(t, a)
	login := a.login(t, f)
	a.stop(t)
	clear := sqliteSecrets(t, path)
	plain := clear.wantSealed(t, nil)

	b := launchServer(t, dir, "--issuer", clusterIssuer, "--master-key-file", oldFile)
	b.waitUp(t)
	if got := sealedCount(t, b); got != clear.count() {
		t.Errorf("the node logged %d values sealed, want %d\n%s", got, clear.count(), b.Logs())
	}
	sealed := sqliteSecrets(t, path)
	if got := sealed.wantSealed(t, oldVault); fmt.Sprint(got) != fmt.Sprint(plain) {
		t.Fatal("the sealed values do not open to the values stored before")
	}
	rt := b.wantWorks(t, f, login.str("access_token"), login.str("refresh_token"))
	b.stop(t)

	// A restart with the same key seals nothing more.
	c := launchServer(t, dir, "--issuer", clusterIssuer, "--master-key-file", oldFile)
	c.waitUp(t)
	c.stop(t)
	if got := sealedCount(t, c); got != 0 {
		t.Errorf("a restart sealed %d values again", got)
	}
	if fmt.Sprint(sqliteSecrets(t, path)) != fmt.Sprint(sealed) {
		t.Error("a restart rewrote sealed values")
	}

	out := c.cli(t, "", "key", "reseal", "--old-master-key-file", oldFile, "--master-key-file", newFile)
	if !strings.Contains(out, fmt.Sprintf("resealed %d secrets", clear.count())) {
		t.Errorf("reseal said %q", out)
	}
	sqliteSecrets(t, path).wantSealed(t, newVault)

	d := launchServer(t, dir, "--issuer", clusterIssuer, "--master-key-file", newFile)
	d.waitUp(t)
	d.wantWorks(t, f, login.str("access_token"), rt)
	d.stop(t)

	if out := serveFails(t, dir, "--db", "sqlite:"+path, "--master-key-file", oldFile); !strings.Contains(out, "do not open with this master key") {
		t.Errorf("serve with the old key after reseal:\n%s", out)
	}
	if out := serveFails(t, dir, "--db", "sqlite:"+path); !strings.Contains(out, "encrypted with a master key") {
		t.Errorf("serve without a key:\n%s", out)
	}
	sqliteSecrets(t, path).wantSealed(t, newVault)
}

// TestMultiNodeSealOnStart starts three nodes at once, with one new master
// key, on a PostgreSQL store made without one: each value is sealed
// exactly once, and every node serves what was issued before.
func TestMultiNodeSealOnStart(t *testing.T) {
	dsn := pgDSN(t)
	hermeticEnv(t)
	dir := t.TempDir()
	keyFile, vault := newMasterKey(t, dir, "master.key")

	first := launchServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn)
	first.waitUp(t)
	f := provision(t, first)
	login := first.login(t, f)
	first.stop(t)
	clear := postgresSecrets(t, dsn)
	plain := clear.wantSealed(t, nil)

	nodes := make([]*server, 3)
	for i := range nodes {
		nodes[i] = launchServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn, "--master-key-file", keyFile)
	}
	total := 0
	for _, n := range nodes {
		n.waitUp(t)
		total += sealedCount(t, n)
	}
	if total != clear.count() {
		t.Errorf("the nodes logged %d values sealed in all, want %d (each exactly once)", total, clear.count())
	}
	if got := postgresSecrets(t, dsn).wantSealed(t, vault); fmt.Sprint(got) != fmt.Sprint(plain) {
		t.Fatal("the sealed values do not open to the values stored before")
	}
	rt := login.str("refresh_token")
	for _, n := range nodes {
		rt = n.wantWorks(t, f, login.str("access_token"), rt)
		n.login(t, f)
	}
}
