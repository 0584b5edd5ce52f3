package taiki_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/taiki"
	"github.com/tokend/tokend/httpapi"
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
