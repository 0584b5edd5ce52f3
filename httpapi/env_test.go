package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
)

// clock is a settable clock for the engine, so expiry and grace tests don't sleep.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// env is a running tokend over a real SQLite file, with a confidential
// client (client_credentials, password, refresh_token), a public client
// (password, refresh_token) and a user alice.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	store  *sqlite.Store
	engine *grant.Engine
	clock  *clock
	logs   *strings.Builder
	dbFile string

	clientID, clientSecret string
	publicID               string
	aliceID                string
}

const alicePassword = "correct horse battery staple"

// cheap argon2id parameters: these tests are about the protocol, not the cost.
var cheap = secret.Params{MemoryKiB: 1024, Time: 1, Threads: 1}

type envOption func(*grant.Config, *secret.Params)

func withGrace(d time.Duration) envOption {
	return func(c *grant.Config, _ *secret.Params) { c.RefreshGrace = d }
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	dbFile := filepath.Join(t.TempDir(), "tokend.db")
	store, err := sqlite.Open(ctx, dbFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := grant.Config{
		Issuer: "http://tokend.test", Alg: "ES256",
		AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour, RefreshGrace: 10 * time.Second,
	}
	params := cheap
	for _, o := range opts {
		o(&cfg, &params)
	}
	hasher, err := secret.NewHasher(params, 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := &clock{}
	m := metrics.New()
	engine, err := grant.New(cfg, store, hasher, m, log, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Start(ctx); err != nil {
		t.Fatal(err)
	}
	api := &httpapi.Server{Engine: engine, Store: store, Metrics: m, Log: log, JWKSMaxAge: time.Minute}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, store: store, engine: engine, clock: clk, logs: logs, dbFile: dbFile}
	e.clientID, e.clientSecret = e.addClient(false, tokend.GrantClientCredentials, tokend.GrantPassword, tokend.GrantRefreshToken)
	e.publicID, _ = e.addClient(true, tokend.GrantPassword, tokend.GrantRefreshToken)
	e.aliceID = e.addUser("alice", alicePassword, "ROLE_USER")
	return e
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (e *env) addClient(public bool, grants ...string) (id, sec string) {
	e.t.Helper()
	return e.addClientScopes(public, nil, grants...)
}

func (e *env) addClientScopes(public bool, scopes []string, grants ...string) (id, sec string) {
	e.t.Helper()
	ctx := context.Background()
	c := &tokend.ClientApp{ID: uuid.NewString(), Name: "test", Public: public, Grants: grants, Scopes: scopes, Mode: tokend.ModeProduction, CreatedAt: time.Now()}
	if !public {
		var err error
		if sec, c.SecretHash, err = grant.NewClientSecret(ctx, e.store); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.store.CreateClient(ctx, c); err != nil {
		e.t.Fatal(err)
	}
	return c.ID, sec
}

func (e *env) addUser(name, password string, roles ...string) string {
	e.t.Helper()
	hash, err := secret.HashPassword(password, cheap)
	if err != nil {
		e.t.Fatal(err)
	}
	u := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: name, PasswordHash: hash, Roles: roles, CreatedAt: time.Now()}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	return u.ID
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

func (r response) str(t *testing.T, key string) string {
	t.Helper()
	s, _ := r.json(t)[key].(string)
	return s
}

// do sends a request; basic is "id:secret" or "".
func (e *env) do(method, path, contentType, body, basic string, header ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if basic != "" {
		id, sec, _ := strings.Cut(basic, ":")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

const form = "application/x-www-form-urlencoded"

// post sends a form to path.
func (e *env) post(path string, v url.Values, basic string) response {
	e.t.Helper()
	return e.do("POST", path, form, v.Encode(), basic)
}

func (e *env) basic() string { return e.clientID + ":" + e.clientSecret }

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// login runs the password grant for alice at the public client.
func (e *env) login() response {
	e.t.Helper()
	r := e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword, "client_id", e.publicID), "")
	if r.status != 200 {
		e.t.Fatalf("login: %d %s", r.status, r.body)
	}
	return r
}

func (e *env) refresh(rt string) response {
	e.t.Helper()
	return e.post("/oauth2/token", vals("grant_type", "refresh_token", "refresh_token", rt, "client_id", e.publicID), "")
}

func (e *env) introspect(tok string) map[string]any {
	e.t.Helper()
	r := e.post("/oauth2/introspect", vals("token", tok), e.basic())
	if r.status != 200 {
		e.t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	return r.json(e.t)
}

func wantOAuthError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	if got := r.str(t, "error"); got != code {
		t.Fatalf("error %q, want %q (body %s)", got, code, r.body)
	}
	if r.str(t, "error_description") == "" {
		t.Fatalf("no error_description in %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if strings.Contains(string(r.body), "eyJ") {
		t.Fatalf("error body carries a token: %s", r.body)
	}
}
