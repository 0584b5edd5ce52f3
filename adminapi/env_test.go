package adminapi_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/adminapi"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/postgres"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
	"github.com/tokend/tokend/tokendtest"
)

const issuer = "http://tokend.test"

var cheap = secret.Params{MemoryKiB: 1024, Time: 1, Threads: 1}

// eachStore runs fn once on SQLite and once on PostgreSQL (when
// TOKEND_TEST_POSTGRES names a database), each time on a fresh store.
func eachStore(t *testing.T, fn func(t *testing.T, open func(t *testing.T) tokend.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv("TOKEND_TEST_POSTGRES") == "" {
			t.Skip("TOKEND_TEST_POSTGRES is not set")
		}
		fn(t, openPostgres)
	})
}

func openSQLite(t *testing.T) tokend.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// postgresDSN makes a schema of its own for t on the test database,
// dropped when t ends, and returns a DSN that uses it.
func postgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("TOKEND_TEST_POSTGRES")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
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

func openPostgres(t *testing.T) tokend.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// env is a tokend node serving the OAuth endpoints and the admin API over
// real HTTP, with tokens of each kind for the admin API.
type env struct {
	t      *testing.T
	store  tokend.Store
	engine *grant.Engine
	srv    *httptest.Server
	// Access tokens: the admin scope, the read scope, another scope only.
	admin, reader, other string
	// adminClient and adminSecret are the client app behind the admin token.
	adminClient, adminSecret string
	// web is a public client allowed the password grant and the admin
	// scopes, for users' logins.
	web string
	// introspector is a confidential client for /oauth2/introspect.
	introID, introSecret string
}

// newEnv starts a node on store; configure, if given, changes the engine's
// configuration first.
func newEnv(t *testing.T, store tokend.Store, configure ...func(*grant.Config)) *env {
	t.Helper()
	e := &env{t: t, store: store}
	hasher, err := secret.NewHasher(cheap, 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	cfg := grant.Config{Issuer: issuer, Alg: "ES256", AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour, RefreshGrace: 10 * time.Second}
	for _, f := range configure {
		f(&cfg)
	}
	e.engine, err = grant.New(cfg, grant.Deps{Store: store, Hasher: hasher, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.engine.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	api := &httpapi.Server{Engine: e.engine, Store: store, Metrics: metrics.New(), Log: log, Routes: []httpapi.Routes{adminapi.New(e.engine)}}
	e.srv = httptest.NewServer(tokendtest.CheckHandler(t, api.Handler()))
	t.Cleanup(e.srv.Close)

	m := e.manager()
	e.adminClient, e.adminSecret = e.addClient(m, "ops", []string{grant.ScopeAdmin, grant.ScopeAdminRead})
	e.admin = e.clientToken(e.adminClient, e.adminSecret, grant.ScopeAdmin)
	id, sec := e.addClient(m, "dashboard", []string{grant.ScopeAdminRead})
	e.reader = e.clientToken(id, sec, "")
	id, sec = e.addClient(m, "svc", []string{"orders.read"})
	e.other = e.clientToken(id, sec, "")
	e.introID, e.introSecret = e.addClient(m, "resource-server", nil)
	web, _, err := m.CreateClient(context.Background(), grant.NewClient{
		Name: "web", Public: true, Scopes: []string{grant.ScopeAdmin, grant.ScopeAdminRead, "profile"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.web = web.ID
	return e
}

// manager is a Manager on the env's store that the CLI would use.
func (e *env) manager() *grant.Manager {
	return &grant.Manager{Store: e.store, Params: cheap, Dialect: "cli", Changed: func(ctx context.Context) { e.engine.Sync(ctx) }}
}

func (e *env) addClient(m *grant.Manager, name string, scopes []string) (string, string) {
	e.t.Helper()
	c, sec, err := m.CreateClient(context.Background(), grant.NewClient{Name: name, Scopes: scopes})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.ID, sec
}

func (e *env) clientToken(id, sec, scope string) string {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	r := e.form("/oauth2/token", form, id, sec)
	if r.status != 200 {
		e.t.Fatalf("client_credentials for %s: %d %s", id, r.status, r.body)
	}
	return r.str("access_token")
}

// login runs the password grant at the web client and returns the response.
func (e *env) login(username, password, scope string) resp {
	e.t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}, "client_id": {e.web}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return e.form("/oauth2/token", form, "", "")
}

// active asks /oauth2/introspect whether a token is active.
func (e *env) active(tok string) bool {
	e.t.Helper()
	r := e.form("/oauth2/introspect", url.Values{"token": {tok}}, e.introID, e.introSecret)
	if r.status != 200 {
		e.t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	return r.json()["active"] == true
}

// userinfo returns the status of /userinfo with tok.
func (e *env) userinfo(tok string) resp {
	return e.do("GET", "/userinfo", tok, "", nil)
}

// resp is a finished request.
type resp struct {
	t      *testing.T
	status int
	header http.Header
	body   []byte
}

func (r resp) json() map[string]any {
	r.t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		r.t.Fatalf("body is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

func (r resp) str(key string) string {
	s, _ := r.json()[key].(string)
	return s
}

// items returns the items of a list response.
func (r resp) items() []map[string]any {
	r.t.Helper()
	var p struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil || p.Items == nil {
		r.t.Fatalf("not a list: %v: %s", err, r.body)
	}
	return p.Items
}

// fields returns the field names of a problem's errors.
func (r resp) fields() []string {
	r.t.Helper()
	var p struct {
		Errors []struct{ Field, Detail string } `json:"errors"`
	}
	json.Unmarshal(r.body, &p)
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

func (e *env) form(path string, form url.Values, user, pass string) resp {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return e.send(req)
}

// do sends a request with a bearer token (none if tok is ""), a JSON body
// (none if body is ""), and further headers as name, value pairs.
func (e *env) do(method, path, tok, body string, header []string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) resp {
	e.t.Helper()
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{t: e.t, status: res.StatusCode, header: res.Header, body: b}
}

// admin sends a request with the admin token.
func (e *env) call(method, path, body string, header ...string) resp {
	e.t.Helper()
	return e.do(method, path, e.admin, body, header)
}

// must sends a request with the admin token and fails the test unless it
// answers want.
func (e *env) must(want int, method, path, body string, header ...string) resp {
	e.t.Helper()
	r := e.call(method, path, body, header...)
	if r.status != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

// createUser creates a user through the API and returns its id.
func (e *env) createUser(body string) string {
	e.t.Helper()
	return e.must(201, "POST", "/admin/v1/users", body).str("id")
}
