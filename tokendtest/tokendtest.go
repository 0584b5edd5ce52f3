// Package tokendtest runs a real tokend for tests: the engine on a real
// SQLite file, with a settable clock, behind an httptest server, and helpers
// to add clients and users and to send requests. The standard endpoints'
// tests and every dialect's tests use it.
package tokendtest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
)

// Issuer is the issuer (and audience) of every test server.
const Issuer = "http://tokend.test"

// Cheap are argon2id parameters for tests that are about the protocol, not the cost.
var Cheap = secret.Params{MemoryKiB: 1024, Time: 1, Threads: 1}

// Clock is a settable clock, so that expiry and grace tests don't sleep.
type Clock struct {
	mu  sync.Mutex
	off time.Duration
}

// Now returns the real time moved by every Advance so far.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// Options adjust the server a test gets.
type Options struct {
	// Config changes the engine's configuration before it starts.
	Config func(*grant.Config)
	// Params are the argon2id parameters (default Cheap).
	Params *secret.Params
	// Routes returns further endpoints to serve, built on the env's engine.
	Routes func(e *Env) []httpapi.Routes
	// Vault seals the store's secrets (none by default).
	Vault *keys.Vault
	// TrustedProxies are believed for X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// Audit tunes the auditor (its clock is the env's Clock unless set).
	Audit grant.AuditOptions
	// DBFile and Clock, when set, are another Env's: the new server is a
	// restart of that one, on the same store and at the same time.
	DBFile string
	Clock  *Clock
}

// Env is a running tokend.
type Env struct {
	T       testing.TB
	Srv     *httptest.Server
	Handler http.Handler // the server's handler (checked, see CheckHandler), for in-process fuzzing
	Store   *sqlite.Store
	Engine  *grant.Engine
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Clock   *Clock
	DBFile  string
	// Auditor writes the audit trail; Flush it before reading the store.
	Auditor *grant.Auditor

	logs *lockedBuilder
}

// New starts a tokend for t; it stops when the test ends.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	ctx := context.Background()
	dbFile := opts.DBFile
	if dbFile == "" {
		dbFile = filepath.Join(t.TempDir(), "tokend.db")
	}
	store, err := sqlite.Open(ctx, dbFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := grant.Config{
		Issuer: Issuer, Alg: "ES256",
		AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour, RefreshGrace: 10 * time.Second,
	}
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	params := Cheap
	if opts.Params != nil {
		params = *opts.Params
	}
	hasher, err := secret.NewHasher(params, 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuilder{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := opts.Clock
	if clk == nil {
		clk = &Clock{}
	}
	m := metrics.New()
	if opts.Audit.Now == nil {
		opts.Audit.Now = clk.Now
	}
	auditor := grant.NewAuditor(store, log, m, opts.Audit)
	actx, stopAudit := context.WithCancel(context.Background())
	auditDone := make(chan struct{})
	go func() { auditor.Run(actx, 50*time.Millisecond); close(auditDone) }()
	t.Cleanup(func() { stopAudit(); <-auditDone })
	engine, err := grant.New(cfg, grant.Deps{Store: store, Hasher: hasher, Metrics: m, Log: log, Now: clk.Now, Vault: opts.Vault, Auditor: auditor})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Store: store, Engine: engine, Metrics: m, Log: log, Clock: clk, DBFile: dbFile, Auditor: auditor, logs: logs}
	api := &httpapi.Server{Engine: engine, Store: store, Metrics: m, Log: log, JWKSMaxAge: time.Minute, TrustedProxies: opts.TrustedProxies}
	if opts.Routes != nil {
		api.Routes = opts.Routes(e)
	}
	// Every exchange with the server is checked against the OpenAPI document.
	e.Handler = CheckHandler(t, api.Handler())
	e.Srv = httptest.NewUnstartedServer(e.Handler)
	e.Srv.Config.ConnContext = api.ConnContext
	e.Srv.Start()
	t.Cleanup(e.Srv.Close)
	return e
}

// Logs returns everything the server logged so far.
func (e *Env) Logs() string { return e.logs.String() }

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// AddClient adds a client app and returns its id and secret ("" for a
// public client). mode "" means production.
func (e *Env) AddClient(public bool, mode string, scopes []string, grants ...string) (id, sec string) {
	e.T.Helper()
	ctx := context.Background()
	if mode == "" {
		mode = tokend.ModeProduction
	}
	c := &tokend.ClientApp{ID: uuid.NewString(), Name: "test", Public: public, Grants: grants, Scopes: scopes, Mode: mode, CreatedAt: time.Now()}
	if !public {
		var err error
		if sec, c.SecretHash, err = grant.NewClientSecret(ctx, e.Store); err != nil {
			e.T.Fatal(err)
		}
	}
	if err := e.Store.CreateClient(ctx, c); err != nil {
		e.T.Fatal(err)
	}
	return c.ID, sec
}

// AddUser adds a user with a password and roles and returns the user's id.
func (e *Env) AddUser(name, password string, roles ...string) string {
	e.T.Helper()
	hash, err := secret.HashPassword(password, Cheap)
	if err != nil {
		e.T.Fatal(err)
	}
	u := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: name, PasswordHash: hash, Roles: roles, CreatedAt: time.Now()}
	if err := e.Store.CreateUser(context.Background(), u); err != nil {
		e.T.Fatal(err)
	}
	return u.ID
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object, failing the test if it is not one.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.Body)
	}
	return m
}

// Str returns a string field of the JSON body ("" if absent).
func (r Response) Str(t testing.TB, key string) string {
	t.Helper()
	s, _ := r.JSON(t)[key].(string)
	return s
}

// Do sends a request. header is a list of name, value pairs.
func (e *Env) Do(method, path, contentType, body string, header ...string) Response {
	e.T.Helper()
	req, err := http.NewRequest(method, e.Srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.T.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return e.Send(req)
}

// Send sends a prepared request.
func (e *Env) Send(req *http.Request) Response {
	e.T.Helper()
	resp, err := e.Srv.Client().Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.T.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// VerifyWithJWKS checks a token the way a resource server would: with a
// JWT library and the public JWKS, none of tokend's own code. It returns
// the claims and the JWS header.
func (e *Env) VerifyWithJWKS(raw string) (map[string]any, jose.Header) {
	e.T.Helper()
	return e.VerifyWithJWKSFor(raw, Issuer)
}

// VerifyWithJWKSFor is VerifyWithJWKS for a token of audience aud (a
// refresh JWT's is grant.RefreshAudience(Issuer)).
func (e *Env) VerifyWithJWKSFor(raw, aud string) (map[string]any, jose.Header) {
	e.T.Helper()
	r := e.Do("GET", "/.well-known/jwks.json", "", "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.Body, &set); err != nil {
		e.T.Fatalf("JWKS: %v", err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.RS512})
	if err != nil {
		e.T.Fatalf("parse token: %v", err)
	}
	h := tok.Headers[0]
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		e.T.Fatalf("kid %q is not in the JWKS", h.KeyID)
	}
	var claims map[string]any
	var std jwt.Claims
	if err := tok.Claims(keys[0].Key, &claims, &std); err != nil {
		e.T.Fatalf("verify token with JWKS: %v", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: Issuer, AnyAudience: jwt.Audience{aud}, Time: e.Clock.Now()}, 0); err != nil {
		e.T.Fatalf("validate claims: %v", err)
	}
	return claims, h
}
