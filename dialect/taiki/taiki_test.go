package taiki_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
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

type response = tokendtest.Response

// The seed's (003) error bodies, byte for byte as tokend writes them.
const (
	noKeyBody     = `{"error":"invalid_request","error_description":"No API key or API secret provided"}`
	incorrectBody = `{"error":"invalid_client","error_description":"Incorrect API key, API secret, or Taiki user ID provided"}`
	notStringBody = `{"error":"invalid_request","error_description":"taiki_user_id must be a string"}`
	tooLargeBody  = `{"error":"invalid_request","error_description":"Request body too large"}`
	methodBody    = `{"error":"invalid_request","error_description":"Method not allowed"}`
	internalBody  = `{"error":"server_error","error_description":"internal error"}`
	busyBody      = `{"error":"temporarily_unavailable","error_description":"The service is temporarily unavailable, retry later"}`
)

const jsonType = "application/json"

// env is a tokend serving the taiki dialect, with a production app and a
// sandbox app allowed client_credentials, and a password user alice.
type env struct {
	*tokendtest.Env
	t *testing.T

	prodID, prodSecret       string
	sandboxID, sandboxSecret string
	aliceID                  string
}

func newEnv(t *testing.T, cfg taiki.Config, opts ...func(*tokendtest.Options)) *env {
	t.Helper()
	o := tokendtest.Options{Routes: func(e *tokendtest.Env) []httpapi.Routes {
		return []httpapi.Routes{taiki.New(e.Engine, cfg)}
	}}
	for _, opt := range opts {
		opt(&o)
	}
	e := &env{Env: tokendtest.New(t, o), t: t}
	e.prodID, e.prodSecret = e.AddClient(false, tokend.ModeProduction, nil, tokend.GrantClientCredentials)
	e.sandboxID, e.sandboxSecret = e.AddClient(false, tokend.ModeSandbox, nil, tokend.GrantClientCredentials)
	e.aliceID = e.AddUser("alice", "correct horse battery staple", "ROLE_USER")
	return e
}

// in returns e for use in subtest t, so that its helpers fail t.
func (e *env) in(t *testing.T) *env {
	inner := *e.Env
	inner.T = t
	c := *e
	c.Env, c.t = &inner, t
	return &c
}

// body is a JSON object of key, value pairs; values keep their JSON type.
func body(kv ...any) string {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// post sends a JSON body to path.
func (e *env) post(path, b string) response {
	e.t.Helper()
	return e.Do("POST", path, jsonType, b)
}

// postHost sends a JSON body to path with a Host header.
func (e *env) postHost(host, path, b string) response {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.Srv.URL+path, strings.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", jsonType)
	req.Host = host
	return e.Send(req)
}

// issue gets a token for the production app, for user ("" for a new one).
func (e *env) issue(user string) (tok, uid string) {
	e.t.Helper()
	kv := []any{"api_key", e.prodID, "api_secret", e.prodSecret}
	if user != "" {
		kv = append(kv, "taiki_user_id", user)
	}
	return wantToken(e.t, e.post("/api/token", body(kv...)))
}

// form posts a form to a standard endpoint as the client id:sec.
func (e *env) form(path, id, sec string, kv ...string) response {
	e.t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	req, err := http.NewRequest("POST", e.Srv.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	return e.Send(req)
}

// introspect asks /oauth2/introspect about tok as the production app.
func (e *env) introspect(tok string) map[string]any {
	e.t.Helper()
	r := e.form("/oauth2/introspect", e.prodID, e.prodSecret, "token", tok)
	if r.Status != 200 {
		e.t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	return r.JSON(e.t)
}

func (e *env) wantActive(tok string, want bool) {
	e.t.Helper()
	if m := e.introspect(tok); m["active"] != want {
		e.t.Fatalf("active = %v, want %v (%v)", m["active"], want, m)
	}
}

// sync makes the engine see changes made to the store directly.
func (e *env) sync() {
	e.t.Helper()
	if err := e.Engine.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// wantToken checks a 200 answer: exactly access_token and taiki_user_id,
// and a token that verifies against the JWKS.
func wantToken(t *testing.T, r response) (tok, uid string) {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != jsonType {
		t.Fatalf("Content-Type %q", ct)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	m := r.JSON(t)
	if len(m) != 2 {
		t.Fatalf("want exactly access_token and taiki_user_id, got %s", r.Body)
	}
	tok, _ = m["access_token"].(string)
	uid, _ = m["taiki_user_id"].(string)
	if tok == "" || uid == "" {
		t.Fatalf("body %s", r.Body)
	}
	return tok, uid
}

// wantError checks an error answer: status, Content-Type and the whole body.
func wantError(t *testing.T, r response, status int, want string) {
	t.Helper()
	if r.Status != status || string(r.Body) != want {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, status, want)
	}
	if ct := r.Header.Get("Content-Type"); ct != jsonType {
		t.Fatalf("Content-Type %q", ct)
	}
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkClaims verifies tok with the JWKS and checks the Taiki claim set.
func (e *env) checkClaims(tok, appID, uid, mode string, ttl time.Duration) map[string]any {
	e.t.Helper()
	claims, h := e.VerifyWithJWKS(tok)
	if h.ExtraHeaders["typ"] != "JWT" || h.Algorithm != "ES256" || h.KeyID == "" {
		e.t.Fatalf("header %+v", h)
	}
	want := map[string]any{
		"token_type": "access", "client_app_id": appID, "taiki_user_id": uid, "mode": mode,
		"sub": uid, "iss": tokendtest.Issuer,
	}
	for k, v := range want {
		if claims[k] != v {
			e.t.Fatalf("claim %s = %v, want %v (%v)", k, claims[k], v, claims)
		}
	}
	if jti, _ := claims["jti"].(string); !hex32.MatchString(jti) {
		e.t.Fatalf("jti %v", claims["jti"])
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if time.Duration(exp-iat)*time.Second != ttl {
		e.t.Fatalf("lifetime %v, want %v", time.Duration(exp-iat)*time.Second, ttl)
	}
	if aud, _ := claims["aud"].([]any); claims["aud"] != tokendtest.Issuer && !slices.Contains(aud, any(tokendtest.Issuer)) {
		e.t.Fatalf("aud %v", claims["aud"])
	}
	for _, c := range []string{"client_id", "preferred_username", "roles", "scope", "sid", "user_id"} {
		if _, ok := claims[c]; ok {
			e.t.Fatalf("unexpected claim %s: %v", c, claims)
		}
	}
	return claims
}

func isUUIDv7(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.Version() == 7 && u.String() == s
}

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

// decodePayload reads a JWT's claims without verifying it.
func decodePayload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestModes(t *testing.T) {
	type call struct {
		host, path, app string // app: "prod" or "sandbox"
		status          int
	}
	cases := []struct {
		name  string
		cfg   taiki.Config
		calls []call
	}{
		{"nothing configured: both modes at /api/token", taiki.DefaultConfig, []call{
			{"", "/api/token", "prod", 200},
			{"", "/api/token", "sandbox", 200},
			{"sandbox.taiki.test", "/api/token", "prod", 200},
			{"", "/sandbox/api/token", "sandbox", 404},
		}},
		{"sandbox prefix", taiki.Config{TTL: time.Hour, SandboxPrefix: "/sandbox"}, []call{
			{"", "/sandbox/api/token", "sandbox", 200},
			{"", "/sandbox/api/token/", "sandbox", 200},
			{"", "/sandbox/api/token", "prod", 401},
			{"", "/sandbox/api/token/", "prod", 401},
			{"", "/api/token", "prod", 200},
			{"", "/api/token", "sandbox", 401}, // the bare path is production's
			{"", "/api/token/", "sandbox", 401},
		}},
		{"production prefix", taiki.Config{TTL: time.Hour, ProductionPrefix: "/live"}, []call{
			{"", "/live/api/token", "prod", 200},
			{"", "/live/api/token", "sandbox", 401},
			{"", "/api/token", "sandbox", 200},
			{"", "/api/token", "prod", 401}, // the bare path is sandbox's
		}},
		{"prefixes for both modes, written loosely", taiki.Config{TTL: time.Hour, SandboxPrefix: "sandbox/", ProductionPrefix: "/v1/live/"}, []call{
			{"", "/sandbox/api/token", "sandbox", 200},
			{"", "/sandbox/api/token", "prod", 401},
			{"", "/v1/live/api/token", "prod", 200},
			{"", "/v1/live/api/token/", "sandbox", 401},
			{"", "/api/token", "sandbox", 200}, // the bare path belongs to neither
			{"", "/api/token", "prod", 200},
		}},
		{"one prefix for both modes tells nothing", taiki.Config{TTL: time.Hour, SandboxPrefix: "/t", ProductionPrefix: "/t"}, []call{
			{"", "/t/api/token", "sandbox", 200},
			{"", "/t/api/token", "prod", 200},
			{"", "/api/token", "prod", 200},
		}},
		{"sandbox host", taiki.Config{TTL: time.Hour, SandboxHost: "sandbox.taiki.test"}, []call{
			{"sandbox.taiki.test", "/api/token", "sandbox", 200},
			{"sandbox.taiki.test", "/api/token", "prod", 401},
			{"", "/api/token", "prod", 200},
			{"", "/api/token", "sandbox", 401}, // every other host is production's
		}},
		{"hosts", taiki.Config{TTL: time.Hour, SandboxHost: "sandbox.taiki.test", ProductionHost: "api.taiki.test"}, []call{
			{"sandbox.taiki.test", "/api/token", "sandbox", 200},
			{"sandbox.taiki.test:8443", "/api/token/", "sandbox", 200},
			{"SANDBOX.taiki.test", "/api/token", "sandbox", 200},
			{"sandbox.taiki.test", "/api/token", "prod", 401},
			{"sandbox.taiki.test:443", "/api/token", "prod", 401},
			{"api.taiki.test", "/api/token", "prod", 200},
			{"api.taiki.test", "/api/token", "sandbox", 401},
			{"", "/api/token", "sandbox", 200}, // a third host belongs to neither
			{"", "/api/token", "prod", 200},
		}},
		{"host and prefix disagree", taiki.Config{TTL: time.Hour, SandboxPrefix: "/sandbox", ProductionHost: "api.taiki.test"}, []call{
			{"api.taiki.test", "/sandbox/api/token", "sandbox", 401},
			{"api.taiki.test", "/sandbox/api/token", "prod", 401},
			{"api.taiki.test", "/api/token", "prod", 200},
			{"api.taiki.test", "/api/token", "sandbox", 401},
			{"", "/sandbox/api/token", "sandbox", 200},
			{"", "/sandbox/api/token", "prod", 401},
			{"", "/api/token", "sandbox", 401}, // path: production; host: sandbox
			{"", "/api/token", "prod", 401},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outer := newEnv(t, c.cfg)
			for _, k := range c.calls {
				host, label := k.host, k.host
				if host == "" {
					host, label = strings.TrimPrefix(outer.Srv.URL, "http://"), "default host"
				}
				t.Run(k.app+" app at "+label+" "+k.path, func(t *testing.T) {
					e := outer.in(t)
					id, sec, mode := e.prodID, e.prodSecret, tokend.ModeProduction
					if k.app == "sandbox" {
						id, sec, mode = e.sandboxID, e.sandboxSecret, tokend.ModeSandbox
					}
					r := e.postHost(host, k.path, body("api_key", id, "api_secret", sec))
					switch k.status {
					case 200:
						tok, uid := wantToken(t, r)
						e.checkClaims(tok, id, uid, mode, time.Hour)
					case 401:
						wantError(t, r, 401, incorrectBody)
					default:
						if r.Status != k.status {
							t.Fatalf("status %d %s, want %d", r.Status, r.Body, k.status)
						}
					}
				})
			}
		})
	}
	t.Run("prefixed path answers other methods with 405", func(t *testing.T) {
		e := newEnv(t, taiki.Config{TTL: time.Hour, SandboxPrefix: "/sandbox"})
		r := e.Do("GET", "/sandbox/api/token", "", "")
		wantError(t, r, 405, methodBody)
		if r.Header.Get("Allow") != "POST" {
			t.Fatalf("Allow %q", r.Header.Get("Allow"))
		}
	})
	t.Run("a user of a sandbox app stays in sandbox", func(t *testing.T) {
		e := newEnv(t, taiki.Config{TTL: time.Hour, SandboxPrefix: "/sandbox"})
		_, uid := wantToken(t, e.post("/sandbox/api/token", body("api_key", e.sandboxID, "api_secret", e.sandboxSecret)))
		wantError(t, e.post("/sandbox/api/token", body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", uid)), 401, incorrectBody)
		tok, again := wantToken(t, e.post("/sandbox/api/token", body("api_key", e.sandboxID, "api_secret", e.sandboxSecret, "taiki_user_id", uid)))
		if again != uid {
			t.Fatalf("user %s, want %s", again, uid)
		}
		e.checkClaims(tok, e.sandboxID, uid, tokend.ModeSandbox, time.Hour)
	})
	for _, bad := range []string{"/sand box", "/{x}", "/a//b", "/../x", "/x?y"} {
		t.Run("invalid prefix "+bad, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("prefix %q was accepted", bad)
				}
			}()
			taiki.New(nil, taiki.Config{SandboxPrefix: bad}).Register(http.NewServeMux())
		})
	}
}

func TestSecretRotation(t *testing.T) {
	ctx := context.Background()
	t.Run("without overlap the old secret stops at once", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, uid := e.issue("")
		newSecret, err := grant.RotateClientSecret(ctx, e.Store, e.prodID, 0, e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.sync()
		wantError(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", uid)), 401, incorrectBody)
		_, again := wantToken(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", newSecret, "taiki_user_id", uid)))
		if again != uid {
			t.Fatalf("user %s, want %s", again, uid)
		}
		e.prodSecret = newSecret // introspect as the app with its new secret
		e.wantActive(tok, true)
	})
	t.Run("with overlap the old secret works until it ends", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, _ := e.issue("")
		newSecret, err := grant.RotateClientSecret(ctx, e.Store, e.prodID, 30*time.Minute, e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.sync()
		old := body("api_key", e.prodID, "api_secret", e.prodSecret)
		wantToken(t, e.post("/api/token", old))
		wantToken(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", newSecret)))
		e.Clock.Advance(31 * time.Minute)
		wantError(t, e.post("/api/token", old), 401, incorrectBody)
		wantToken(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", newSecret)))
		e.prodSecret = newSecret
		e.wantActive(tok, true)
	})
}

func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	t.Run("expires after one hour", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, _ := e.issue("")
		e.Clock.Advance(59 * time.Minute)
		e.wantActive(tok, true)
		e.Clock.Advance(time.Minute)
		e.wantActive(tok, false)
	})
	t.Run("revoked by its own app", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, uid := e.issue("")
		otherID, otherSecret := e.AddClient(false, tokend.ModeProduction, nil, tokend.GrantClientCredentials)
		r := e.form("/oauth2/revoke", otherID, otherSecret, "token", tok)
		if r.Status != 400 || r.Str(t, "error") != "unauthorized_client" {
			t.Fatalf("another app revoked: %d %s", r.Status, r.Body)
		}
		e.wantActive(tok, true)
		if r := e.form("/oauth2/revoke", e.prodID, e.prodSecret, "token", tok); r.Status != 200 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		e.wantActive(tok, false)
		// The user can still get a fresh token.
		fresh, _ := e.issue(uid)
		e.wantActive(fresh, true)
	})
	t.Run("a disabled app", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, uid := e.issue("")
		introspector, isec := e.AddClient(false, tokend.ModeProduction, nil, tokend.GrantClientCredentials)
		if err := e.Store.DisableClient(ctx, e.prodID); err != nil {
			t.Fatal(err)
		}
		e.sync()
		wantError(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", uid)), 401, incorrectBody)
		if m := e.form("/oauth2/introspect", introspector, isec, "token", tok).JSON(t); m["active"] != false {
			t.Fatalf("token of a disabled app: %v", m)
		}
	})
	t.Run("a disabled user", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, uid := e.issue("")
		if err := e.Store.DisableUser(ctx, uid, e.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.sync()
		wantError(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", uid)), 401, incorrectBody)
		e.wantActive(tok, false)
		wantToken(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", e.prodSecret)))
	})
	t.Run("an end user cannot log in with a password", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		pwID, pwSecret := e.AddClient(false, tokend.ModeProduction, nil, tokend.GrantPassword)
		_, uid := e.issue("")
		for _, pw := range []string{uid, "x"} {
			r := e.form("/oauth2/token", pwID, pwSecret, "grant_type", "password", "username", uid, "password", pw)
			if r.Status != 400 || r.Str(t, "error") != "invalid_grant" {
				t.Fatalf("end user logged in: %d %s", r.Status, r.Body)
			}
		}
	})
}

func TestEndUsers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, taiki.DefaultConfig)
	_, a := e.issue("")
	_, b := e.issue("")
	e.issue(a) // an existing user is not created again
	_, s := wantToken(t, e.post("/api/token", body("api_key", e.sandboxID, "api_secret", e.sandboxSecret)))
	ids := func(client string) []string {
		t.Helper()
		users, err := e.Store.ListUsers(ctx, tokend.UserFilter{ClientID: client})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, u := range users {
			if u.ClientID != client {
				t.Fatalf("user %s belongs to %s", u.ID, u.ClientID)
			}
			out = append(out, u.ID)
		}
		slices.Sort(out)
		return out
	}
	want := []string{a, b}
	slices.Sort(want)
	if got := ids(e.prodID); !slices.Equal(got, want) {
		t.Fatalf("production app's users %v, want %v", got, want)
	}
	if got := ids(e.sandboxID); !slices.Equal(got, []string{s}) {
		t.Fatalf("sandbox app's users %v, want %v", got, []string{s})
	}
	if got := ids(""); slices.Contains(got, a) || slices.Contains(got, s) {
		t.Fatalf("end users listed among the password users: %v", got)
	}
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
