package taiki_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/taiki"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
	"github.com/tokend/tokend/tokendtest"
)

func TestToken(t *testing.T) {
	e := newEnv(t, taiki.DefaultConfig)
	_, existing := e.issue("")
	cases := []struct {
		name, path, contentType, body string
		app, mode                     string // "prod" or "sandbox"
		wantUser                      string // "" for a new user
	}{
		{name: "new user, field absent", path: "/api/token", body: body("api_key", e.prodID, "api_secret", e.prodSecret)},
		{name: "new user, field null", path: "/api/token", body: body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", nil)},
		{name: "new user, field empty", path: "/api/token", body: body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", "")},
		{name: "existing user", path: "/api/token", body: body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", existing), wantUser: existing},
		{name: "trailing slash", path: "/api/token/", body: body("api_key", e.prodID, "api_secret", e.prodSecret)},
		{name: "trailing slash, existing user", path: "/api/token/", body: body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", existing), wantUser: existing},
		{name: "charset parameter", path: "/api/token", contentType: "application/json; charset=utf-8", body: body("api_key", e.prodID, "api_secret", e.prodSecret)},
		{name: "unknown fields ignored", path: "/api/token", body: body("api_key", e.prodID, "api_secret", e.prodSecret, "mode", "sandbox", "extra", 1)},
		{name: "sandbox app", path: "/api/token", app: "sandbox", body: body("api_key", e.sandboxID, "api_secret", e.sandboxSecret)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.in(t)
			ct := c.contentType
			if ct == "" {
				ct = jsonType
			}
			tok, uid := wantToken(t, e.Do("POST", c.path, ct, c.body))
			if c.wantUser != "" && uid != c.wantUser {
				t.Fatalf("taiki_user_id %s, want %s", uid, c.wantUser)
			}
			if c.wantUser == "" && (uid == existing || !isUUIDv7(uid)) {
				t.Fatalf("want a new UUIDv7 user, got %s", uid)
			}
			app, mode := e.prodID, tokend.ModeProduction
			if c.app == "sandbox" {
				app, mode = e.sandboxID, tokend.ModeSandbox
			}
			e.checkClaims(tok, app, uid, mode, time.Hour)
			if m := e.introspect(tok); m["active"] != true || m["sub"] != uid || m["jti"] == nil {
				t.Fatalf("introspection %v", m)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t, taiki.DefaultConfig)
	_, prodUser := e.issue("")
	_, sandboxUser := wantToken(t, e.post("/api/token", body("api_key", e.sandboxID, "api_secret", e.sandboxSecret)))
	pwOnlyID, pwOnlySecret := e.AddClient(false, tokend.ModeProduction, nil, tokend.GrantPassword, tokend.GrantRefreshToken)
	publicID, _ := e.AddClient(true, tokend.ModeProduction, nil, tokend.GrantClientCredentials)
	disabledID, disabledSecret := e.AddClient(false, tokend.ModeProduction, nil, tokend.GrantClientCredentials)
	if err := e.Store.DisableClient(context.Background(), disabledID); err != nil {
		t.Fatal(err)
	}
	// A client whose id is no UUID (made by hand in the store) has no api_key.
	legacySecret, legacyHash, err := grant.NewClientSecret(context.Background(), e.Store)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.CreateClient(context.Background(), &tokend.ClientApp{ID: "legacy-app", Name: "legacy", SecretHash: legacyHash,
		Grants: []string{tokend.GrantClientCredentials}, Mode: tokend.ModeProduction, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if r := e.form("/oauth2/token", "legacy-app", legacySecret, "grant_type", "client_credentials"); r.Status != 200 {
		t.Fatalf("the legacy client works at /oauth2/token: %d %s", r.Status, r.Body)
	}
	_, disabledUser := e.issue("")
	if err := e.Store.DisableUser(context.Background(), disabledUser, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.sync()

	key, sec := e.prodID, e.prodSecret
	big := body("api_key", key, "api_secret", sec, "pad", strings.Repeat("x", 65<<10))
	cases := []struct {
		name, path, contentType, body string
		status                        int
		want                          string
	}{
		// 400: no usable api_key or api_secret, or a body that is no JSON object.
		{"empty body", "/api/token", jsonType, "", 400, noKeyBody},
		{"empty object", "/api/token", jsonType, `{}`, 400, noKeyBody},
		{"api_key missing", "/api/token", jsonType, body("api_secret", sec), 400, noKeyBody},
		{"api_secret missing", "/api/token", jsonType, body("api_key", key), 400, noKeyBody},
		{"api_key null", "/api/token", jsonType, body("api_key", nil, "api_secret", sec), 400, noKeyBody},
		{"api_secret null", "/api/token", jsonType, body("api_key", key, "api_secret", nil), 400, noKeyBody},
		{"api_key empty", "/api/token", jsonType, body("api_key", "", "api_secret", sec), 400, noKeyBody},
		{"api_secret empty", "/api/token", jsonType, body("api_key", key, "api_secret", ""), 400, noKeyBody},
		{"api_key number", "/api/token", jsonType, body("api_key", 42, "api_secret", sec), 400, noKeyBody},
		{"api_key object", "/api/token", jsonType, body("api_key", map[string]any{"id": key}, "api_secret", sec), 400, noKeyBody},
		{"api_secret boolean", "/api/token", jsonType, body("api_key", key, "api_secret", true), 400, noKeyBody},
		{"api_secret array", "/api/token", jsonType, body("api_key", key, "api_secret", []string{sec}), 400, noKeyBody},
		{"missing key wins over a bad user id", "/api/token", jsonType, body("api_secret", sec, "taiki_user_id", 7), 400, noKeyBody},
		{"malformed JSON", "/api/token", jsonType, `{"api_key": "` + key + `", "api_secret": `, 400, noKeyBody},
		{"trailing garbage", "/api/token", jsonType, body("api_key", key, "api_secret", sec) + ` {}`, 400, noKeyBody},
		{"array body", "/api/token", jsonType, `[` + body("api_key", key, "api_secret", sec) + `]`, 400, noKeyBody},
		{"string body", "/api/token", jsonType, `"` + key + `"`, 400, noKeyBody},
		{"null body", "/api/token", jsonType, `null`, 400, noKeyBody},
		{"number body", "/api/token", jsonType, `42`, 400, noKeyBody},
		{"text/plain content type", "/api/token", "text/plain", body("api_key", key, "api_secret", sec), 400, noKeyBody},
		{"form content type", "/api/token", "application/x-www-form-urlencoded", "api_key=" + key + "&api_secret=" + sec, 400, noKeyBody},
		{"no content type", "/api/token", "", body("api_key", key, "api_secret", sec), 400, noKeyBody},
		{"malformed JSON, trailing slash", "/api/token/", jsonType, `{`, 400, noKeyBody},
		// 400: a taiki_user_id that is not a string.
		{"taiki_user_id number", "/api/token", jsonType, body("api_key", key, "api_secret", sec, "taiki_user_id", 12), 400, notStringBody},
		{"taiki_user_id boolean", "/api/token", jsonType, body("api_key", key, "api_secret", sec, "taiki_user_id", false), 400, notStringBody},
		{"taiki_user_id object", "/api/token", jsonType, body("api_key", key, "api_secret", sec, "taiki_user_id", map[string]string{"id": prodUser}), 400, notStringBody},
		{"taiki_user_id array", "/api/token", jsonType, body("api_key", key, "api_secret", sec, "taiki_user_id", []string{prodUser}), 400, notStringBody},
		// 413
		{"oversized body", "/api/token", jsonType, big, 413, tooLargeBody},
		{"oversized body, trailing slash", "/api/token/", jsonType, big, 413, tooLargeBody},
		// 401: wrong credentials, or a user id that is not this app's.
		{"unknown api_key", "/api/token", jsonType, body("api_key", uuid.NewString(), "api_secret", sec), 401, incorrectBody},
		{"non-UUID api_key", "/api/token", jsonType, body("api_key", "my-app", "api_secret", sec), 401, incorrectBody},
		{"non-UUID api_key of an existing client", "/api/token", jsonType, body("api_key", "legacy-app", "api_secret", legacySecret), 401, incorrectBody},
		{"api_key with spaces", "/api/token", jsonType, body("api_key", " "+key+" ", "api_secret", sec), 401, incorrectBody},
		{"wrong api_secret", "/api/token", jsonType, body("api_key", key, "api_secret", sec+"x"), 401, incorrectBody},
		{"another app's secret", "/api/token", jsonType, body("api_key", key, "api_secret", e.sandboxSecret), 401, incorrectBody},
		{"unknown taiki_user_id", "/api/token", jsonType, body("api_key", key, "api_secret", sec, "taiki_user_id", uuid.Must(uuid.NewV7()).String()), 401, incorrectBody},
		{"non-UUID taiki_user_id", "/api/token", jsonType, body("api_key", key, "api_secret", sec, "taiki_user_id", "someone"), 401, incorrectBody},
		{"another app's user", "/api/token", jsonType, body("api_key", key, "api_secret", sec, "taiki_user_id", sandboxUser), 401, incorrectBody},
		{"a password user's id", "/api/token", jsonType, body("api_key", key, "api_secret", sec, "taiki_user_id", e.aliceID), 401, incorrectBody},
		{"a disabled user", "/api/token", jsonType, body("api_key", key, "api_secret", sec, "taiki_user_id", disabledUser), 401, incorrectBody},
		{"app without client_credentials", "/api/token", jsonType, body("api_key", pwOnlyID, "api_secret", pwOnlySecret), 401, incorrectBody},
		{"public app", "/api/token", jsonType, body("api_key", publicID, "api_secret", "anything"), 401, incorrectBody},
		{"disabled app", "/api/token", jsonType, body("api_key", disabledID, "api_secret", disabledSecret), 401, incorrectBody},
		{"wrong secret, trailing slash", "/api/token/", jsonType, body("api_key", key, "api_secret", "nope"), 401, incorrectBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.in(t)
			r := e.Do("POST", c.path, c.contentType, c.body)
			wantError(t, r, c.status, c.want)
			if strings.Contains(string(r.Body), "eyJ") {
				t.Fatalf("error body carries a token: %s", r.Body)
			}
		})
	}

	for _, path := range []string{"/api/token", "/api/token/"} {
		for _, method := range []string{"GET", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			t.Run(method+" "+path, func(t *testing.T) {
				e := e.in(t)
				r := e.Do(method, path, jsonType, body("api_key", key, "api_secret", sec))
				wantError(t, r, 405, methodBody)
				if a := r.Header.Get("Allow"); a != "POST" {
					t.Fatalf("Allow %q", a)
				}
			})
		}
	}

	t.Run("failures create no end user", func(t *testing.T) {
		e := e.in(t)
		users, err := e.Store.ListUsers(context.Background(), tokend.UserFilter{ClientID: pwOnlyID})
		if err != nil || len(users) != 0 {
			t.Fatalf("%v %v", users, err)
		}
	})
}

// TestSeedExample replays the seed's example exchange as a Taiki client
// makes it: a JSON body with api_key and api_secret, then, for the same
// person later, the taiki_user_id it stored.
func TestSeedExample(t *testing.T) {
	e := newEnv(t, taiki.DefaultConfig)
	// The seed's example token, as printed on the page.
	const seedToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoxNzI4MjkzNDY0LCJpYXQiOjE3MjQ2OTM0NjQsImp0aSI6ImI3OTgzMjQwNTE4YzRjNTI4Y2UyZGI0ZWNjMjgwMWU0IiwiY2xpZW50X2FwcF9pZCI6IjA2NmNjYjhiLWEyZGYtNzg1MS04MDAwLWRjNDEzYWNlODcyZSIsInRhaWtpX3VzZXJfaWQiOiIwNjZjY2JiZC04ODI0LTc3ZTMtODAwMC0wZGI5YThlMDUwNjcifQ.S2-kuFx-P4JTpyuOszDz_gXRLCHj0EKpUvUft9n3me0"
	seedClaims := decodePayload(t, seedToken)
	seedApp, seedUser := seedClaims["client_app_id"].(string), seedClaims["taiki_user_id"].(string)

	send := func(payload string) response {
		t.Helper()
		req, err := http.NewRequest("POST", e.Srv.URL+"/api/token", strings.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		return e.Send(req)
	}
	first := `{
    "api_key": "` + e.prodID + `",
    "api_secret": "` + e.prodSecret + `"
}`
	tok, uid := wantToken(t, send(first))
	claims := e.checkClaims(tok, e.prodID, uid, tokend.ModeProduction, time.Hour)
	for k := range seedClaims {
		if _, ok := claims[k]; !ok {
			t.Fatalf("the seed's token has claim %s, ours does not: %v", k, claims)
		}
	}

	again := `{
    "api_key": "` + e.prodID + `",
    "api_secret": "` + e.prodSecret + `",
    "taiki_user_id": "` + uid + `"
}`
	tok2, uid2 := wantToken(t, send(again))
	if uid2 != uid || tok2 == tok {
		t.Fatalf("same user %s/%s, new token %v", uid, uid2, tok2 != tok)
	}

	// The seed's own identifiers belong to no app here: the seed's 401.
	wantError(t, send(`{"api_key": "`+seedApp+`", "api_secret": "secret", "taiki_user_id": "`+seedUser+`"}`), 401, incorrectBody)
	// And with our app but the seed's user: the seed's 401 too.
	wantError(t, send(`{"api_key": "`+e.prodID+`", "api_secret": "`+e.prodSecret+`", "taiki_user_id": "`+seedUser+`"}`), 401, incorrectBody)
	// Without the secret: the seed's 400.
	wantError(t, send(`{"api_key": "`+e.prodID+`"}`), 400, noKeyBody)
}

func TestConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		if taiki.DefaultConfig.TTL != time.Hour || taiki.DefaultConfig.Alg != "" {
			t.Fatalf("%+v", taiki.DefaultConfig)
		}
		p := taiki.Profile(taiki.DefaultConfig)
		if p.Dialect != "taiki" || p.AccessTTL != time.Hour || p.Type != "JWT" || !p.NoSession {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("algorithm and lifetime", func(t *testing.T) {
		e := newEnv(t, taiki.Config{Alg: "EdDSA", TTL: 5 * time.Minute}, func(o *tokendtest.Options) {
			o.Config = func(c *grant.Config) { c.ExtraAlgs = []string{"EdDSA"} }
		})
		tok, _ := e.issue("")
		claims, h := e.VerifyWithJWKS(tok)
		if h.Algorithm != "EdDSA" || claims["exp"].(float64)-claims["iat"].(float64) != 300 {
			t.Fatalf("header %+v claims %v", h, claims)
		}
		e.Clock.Advance(5 * time.Minute)
		e.wantActive(tok, false)
	})
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, taiki.DefaultConfig)
	e.issue("")
	e.issue("")
	wantError(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", "wrong")), 401, incorrectBody)
	wantError(t, e.post("/api/token", `{`), 400, noKeyBody)
	m := string(e.Do("GET", "/metrics", "", "").Body)
	for _, line := range []string{
		`tokend_tokens_issued_total{dialect="taiki",grant="client_credentials"} 2`,
		`tokend_failures_total{dialect="taiki",reason="invalid_client"} 1`,
		`tokend_failures_total{dialect="taiki",reason="invalid_request"} 1`,
	} {
		if !strings.Contains(m, line+"\n") {
			t.Fatalf("metrics lack %q", line)
		}
	}
}

// flakyStore fails client lookups on demand, to reach the 503 and 500 answers.
type flakyStore struct {
	*sqlite.Store
	fail atomic.Pointer[error]
}

func (s *flakyStore) ClientByID(ctx context.Context, id string) (*tokend.ClientApp, error) {
	if err := s.fail.Load(); err != nil {
		return nil, *err
	}
	return s.Store.ClientByID(ctx, id)
}

// lockedBuilder collects the server's log lines, written from its goroutines.
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

func TestServerFailures(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &flakyStore{Store: db}
	hasher, err := secret.NewHasher(tokendtest.Cheap, 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuilder{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	m := metrics.New()
	engine, err := grant.New(grant.Config{Issuer: tokendtest.Issuer, Alg: "ES256", AccessTTL: time.Minute, RefreshTTL: time.Hour},
		grant.Deps{Store: store, Hasher: hasher, Metrics: m, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Start(ctx); err != nil {
		t.Fatal(err)
	}
	api := &httpapi.Server{Engine: engine, Store: store, Metrics: m, Log: log, Routes: []httpapi.Routes{taiki.New(engine, taiki.DefaultConfig)}}
	srv := httptest.NewServer(tokendtest.CheckHandler(t, api.Handler()))
	t.Cleanup(srv.Close)
	id := uuid.NewString()
	sec, hash, err := grant.NewClientSecret(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(ctx, &tokend.ClientApp{ID: id, Name: "x", SecretHash: hash, Grants: []string{tokend.GrantClientCredentials}, Mode: tokend.ModeProduction}); err != nil {
		t.Fatal(err)
	}
	post := func(t *testing.T) response {
		t.Helper()
		resp, err := http.Post(srv.URL+"/api/token", jsonType, strings.NewReader(body("api_key", id, "api_secret", sec)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	}
	cases := []struct {
		name   string
		err    error
		status int
		want   string
	}{
		{"store unavailable", &tokend.Error{Code: tokend.EUNAVAILABLE, Message: "store unavailable"}, 503, busyBody},
		{"internal failure", errors.New("disk on fire at /var/lib/tokend"), 500, internalBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store.fail.Store(&c.err)
			defer store.fail.Store(nil)
			r := post(t)
			wantError(t, r, c.status, c.want)
			if c.status == 503 && r.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		})
	}
	if !strings.Contains(logs.String(), "taiki token request failed") {
		t.Fatalf("internal failure not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), sec) {
		t.Fatal("the secret was logged")
	}
	wantToken(t, post(t)) // and it recovers
}
