package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// clusterIssuer is the issuer every node of one deployment shares.
const clusterIssuer = "http://tokend.cluster.test"

// pgDSN returns a DSN on a fresh schema of the test PostgreSQL database
// (TOKEND_TEST_POSTGRES), dropped when the test ends; without the variable
// the test is skipped.
func pgDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("TOKEND_TEST_POSTGRES")
	if base == "" {
		t.Skip("TOKEND_TEST_POSTGRES is not set")
	}
	if testing.Short() {
		t.Skip("starts several nodes")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", base, err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// withHost rewrites a DSN to reach the database through addr.
func withHost(t *testing.T, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// proxy is a TCP proxy the test can cut and restore, to take the database
// away from a node.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the old port may take a moment to free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.ln, p.addr = ln, ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// httpResult is a finished request.
type httpResult struct {
	status int
	header http.Header
	body   map[string]any
	err    error
}

func (s *server) post(path string, form url.Values, user, pass string) httpResult {
	req, _ := http.NewRequest("POST", "http://"+s.addr+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return do(req)
}

func (s *server) get(path string) httpResult {
	req, _ := http.NewRequest("GET", "http://"+s.addr+path, nil)
	return do(req)
}

var httpClient = &http.Client{Timeout: 15 * time.Second, Transport: checked(&http.Transport{MaxIdleConnsPerHost: 64})}

func do(req *http.Request) httpResult {
	resp, err := httpClient.Do(req)
	if err != nil {
		return httpResult{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := httpResult{status: resp.StatusCode, header: resp.Header}
	json.Unmarshal(b, &r.body)
	return r
}

func (r httpResult) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// nodeFixture holds what the multi-node tests provision with the CLI.
type nodeFixture struct {
	clientID, clientSecret, publicID string
}

func provision(t *testing.T, s *server) nodeFixture {
	t.Helper()
	var f nodeFixture
	var m map[string]string
	json.Unmarshal([]byte(s.cli(t, "", "client", "add", "svc", "--grant", "client_credentials", "--grant", "password", "--grant", "refresh_token", "--json")), &m)
	f.clientID, f.clientSecret = m["client_id"], m["client_secret"]
	var pub map[string]any
	json.Unmarshal([]byte(s.cli(t, "", "client", "add", "web", "--public", "--json")), &pub)
	f.publicID, _ = pub["client_id"].(string)
	s.cli(t, "pw-of-alice\n", "user", "add", "alice", "--password-stdin", "--argon2-memory", "1024", "--argon2-time", "1")
	return f
}

func (s *server) login(t *testing.T, f nodeFixture) httpResult {
	t.Helper()
	r := s.post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"pw-of-alice"}, "client_id": {f.publicID}}, "", "")
	if r.status != 200 {
		t.Fatalf("login: %d %v %v", r.status, r.body, r.err)
	}
	return r
}

func (s *server) refresh(rt, clientID string) httpResult {
	return s.post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}, "", "")
}

func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, limit)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestMultiNodeRefresh spreads 50 concurrent refreshes of one token over
// two nodes on one PostgreSQL database.
func TestMultiNodeRefresh(t *testing.T) {
	for _, grace := range []string{"10s", "0s"} {
		t.Run("grace "+grace, func(t *testing.T) {
			dsn := pgDSN(t)
			a := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn, "--refresh-grace", grace)
			b := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn, "--refresh-grace", grace)
			f := provision(t, a)
			rt := a.login(t, f).str("refresh_token")
			results := make([]httpResult, 50)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range results {
				node := a
				if i%2 == 1 {
					node = b
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results[i] = node.refresh(rt, f.publicID)
				}()
			}
			close(start)
			wg.Wait()
			ok, tokens := 0, map[string]bool{}
			for _, r := range results {
				switch {
				case r.err != nil || r.status >= 500:
					t.Fatalf("a refresh failed: %d %v %v", r.status, r.body, r.err)
				case r.status == 200:
					ok++
					tokens[r.str("refresh_token")] = true
				}
			}
			if grace == "0s" {
				if ok != 1 {
					t.Fatalf("%d of 50 succeeded with grace 0, want exactly 1", ok)
				}
				return
			}
			if ok != 50 || len(tokens) != 1 {
				t.Fatalf("%d of 50 succeeded with %d distinct refresh tokens; want 50 and 1", ok, len(tokens))
			}
		})
	}
}

// TestMultiNodeChanges makes changes on one node or with the CLI and
// checks that the other node enforces them within one second.
func TestMultiNodeChanges(t *testing.T) {
	dsn := pgDSN(t)
	a := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn)
	b := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn)
	f := provision(t, a)
	cc := func(s *server, secret string) int {
		return s.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, secret).status
	}
	if cc(b, f.clientSecret) != 200 { // b now has the client cached
		t.Fatal("client_credentials on b")
	}

	t.Run("session revoked on a", func(t *testing.T) {
		r := b.login(t, f)
		if rv := a.post("/oauth2/revoke", url.Values{"token": {r.str("refresh_token")}, "client_id": {f.publicID}}, "", ""); rv.status != 200 {
			t.Fatalf("revoke: %d", rv.status)
		}
		eventually(t, "session revocation on b", time.Second, func() bool {
			in := b.post("/oauth2/introspect", url.Values{"token": {r.str("access_token")}}, f.clientID, f.clientSecret)
			return in.body["active"] == false
		})
	})
	t.Run("key rotated with the CLI", func(t *testing.T) {
		out := a.cli(t, "", "key", "rotate")
		kid := strings.Fields(out)[3]
		eventually(t, "key rotation on b", time.Second, func() bool {
			r := b.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, f.clientSecret)
			return strings.Contains(string(mustDecodeHeader(t, r.str("access_token"))), kid)
		})
	})
	t.Run("secret rotated with the CLI", func(t *testing.T) {
		var m map[string]string
		json.Unmarshal([]byte(a.cli(t, "", "client", "rotate-secret", f.clientID, "--json")), &m)
		eventually(t, "secret rotation on b", time.Second, func() bool { return cc(b, f.clientSecret) == 401 })
		f.clientSecret = m["client_secret"]
		if cc(b, f.clientSecret) != 200 {
			t.Fatal("the new secret does not work on b")
		}
	})
	t.Run("user disabled with the CLI", func(t *testing.T) {
		rt := b.login(t, f).str("refresh_token")
		a.cli(t, "", "user", "disable", "alice")
		eventually(t, "user disable on b", time.Second, func() bool {
			return b.refresh(rt, f.publicID).status == 400
		})
	})
	t.Run("client disabled with the CLI", func(t *testing.T) {
		a.cli(t, "", "client", "disable", f.clientID)
		eventually(t, "client disable on b", time.Second, func() bool { return cc(b, f.clientSecret) == 401 })
	})
}

func mustDecodeHeader(t *testing.T, jwt string) []byte {
	t.Helper()
	h, _, _ := strings.Cut(jwt, ".")
	b, err := decodeSegment(h)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	return b
}

// TestMultiNodeDatabaseOutage takes the database away from a node: it
// reports not ready, refuses what needs the database with a fast 503 in
// each endpoint's format, keeps issuing client_credentials tokens and
// serving the JWKS from its caches, and recovers without a restart.
func TestMultiNodeDatabaseOutage(t *testing.T) {
	dsn := pgDSN(t)
	u, _ := url.Parse(dsn)
	px := newProxy(t, u.Host)
	a := startServer(t, t.TempDir(), "--db", withHost(t, dsn, px.addr), "--dialects", "ocm")
	f := provision(t, a)
	// Let the node apply the provisioning's changes first (they drop the
	// client from its cache), so that the client cached below stays cached.
	time.Sleep(time.Second)
	if r := a.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, f.clientSecret); r.status != 200 {
		t.Fatalf("cc: %d", r.status)
	}

	px.cut()
	eventually(t, "readyz reporting the outage", 5*time.Second, func() bool { return a.get("/readyz").status == 503 })
	start := time.Now()
	r := a.post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"pw-of-alice"}, "client_id": {f.publicID}}, "", "")
	if r.status != 503 || r.header.Get("Retry-After") == "" || r.str("error") != "temporarily_unavailable" {
		t.Fatalf("password login without a database: %d %v %v", r.status, r.body, r.err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the 503 took %s", d)
	}
	if r := a.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, f.clientSecret); r.status != 200 {
		t.Fatalf("client_credentials from the cache: %d %v", r.status, r.body)
	}
	if r := a.get("/.well-known/jwks.json"); r.status != 200 {
		t.Fatalf("JWKS from the cache: %d", r.status)
	}
	req, _ := http.NewRequest("POST", "http://"+a.addr+"/system/api/v1/security/token", nil)
	req.SetBasicAuth("alice", "pw-of-alice")
	if r := do(req); r.status != 503 || r.body["title"] != "Service Unavailable" {
		t.Fatalf("OCM without a database: %d %v", r.status, r.body)
	}

	px.restore()
	eventually(t, "recovery", 10*time.Second, func() bool { return a.get("/readyz").status == 200 })
	eventually(t, "logins after recovery", 10*time.Second, func() bool {
		return a.post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"pw-of-alice"}, "client_id": {f.publicID}}, "", "").status == 200
	})
}

// TestMultiNodeKill kills a node with SIGKILL in the middle of a login and
// refresh load: everything it confirmed to a client still stands on the
// other node.
func TestMultiNodeKill(t *testing.T) {
	dsn := pgDSN(t)
	a := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn)
	b := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn)
	f := provision(t, a)

	var mu sync.Mutex
	var confirmed []httpResult
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := a.post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"pw-of-alice"}, "client_id": {f.publicID}}, "", "")
				if r.err != nil {
					return // the node is gone
				}
				if r.status != 200 {
					continue
				}
				if rr := a.refresh(r.str("refresh_token"), f.publicID); rr.err == nil && rr.status == 200 {
					r = rr
				}
				mu.Lock()
				confirmed = append(confirmed, r)
				mu.Unlock()
			}
		}()
	}
	eventually(t, "some confirmed logins", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(confirmed) >= 40
	})
	a.cmd.Process.Kill()
	close(stop)
	wg.Wait()
	<-a.done

	mu.Lock()
	defer mu.Unlock()
	for i, r := range confirmed {
		in := b.post("/oauth2/introspect", url.Values{"token": {r.str("access_token")}}, f.clientID, f.clientSecret)
		if in.body["active"] != true {
			t.Fatalf("confirmed access token %d is not active on the surviving node: %v %s", i, in.body, r.str("access_token"))
		}
		if rr := b.refresh(r.str("refresh_token"), f.publicID); rr.status != 200 {
			t.Fatalf("confirmed refresh token %d does not work on the surviving node: %d %v", i, rr.status, rr.body)
		}
	}
	t.Logf("%d confirmed logins survived the kill", len(confirmed))
}

func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}
