package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/tokendtest"
)

type response = tokendtest.Response

// env is a running tokend with a confidential client (client_credentials,
// password, refresh_token), a public client (password, refresh_token) and
// a user alice.
type env struct {
	*tokendtest.Env
	t testing.TB

	clientID, clientSecret string
	publicID               string
	aliceID                string
}

const alicePassword = "correct horse battery staple"

type envOption func(*tokendtest.Options)

func withGrace(d time.Duration) envOption {
	return func(o *tokendtest.Options) {
		o.Config = func(c *grant.Config) { c.RefreshGrace = d }
	}
}

func withParams(p secret.Params) envOption {
	return func(o *tokendtest.Options) { o.Params = &p }
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	var o tokendtest.Options
	for _, opt := range opts {
		opt(&o)
	}
	e := &env{Env: tokendtest.New(t, o), t: t}
	e.clientID, e.clientSecret = e.addClient(false, tokend.GrantClientCredentials, tokend.GrantPassword, tokend.GrantRefreshToken)
	e.publicID, _ = e.addClient(true, tokend.GrantPassword, tokend.GrantRefreshToken)
	e.aliceID = e.AddUser("alice", alicePassword, "ROLE_USER")
	return e
}

func (e *env) addClient(public bool, grants ...string) (id, sec string) {
	e.t.Helper()
	return e.AddClient(public, "", nil, grants...)
}

func (e *env) addClientScopes(public bool, scopes []string, grants ...string) (id, sec string) {
	e.t.Helper()
	return e.AddClient(public, "", scopes, grants...)
}

// do sends a request; basic is "id:secret" or "".
func (e *env) do(method, path, contentType, body, basic string, header ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.Srv.URL+path, strings.NewReader(body))
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
	return e.Send(req)
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
	if r.Status != 200 {
		e.t.Fatalf("login: %d %s", r.Status, r.Body)
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
	if r.Status != 200 {
		e.t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	return r.JSON(e.t)
}

func (e *env) verifyWithJWKS(raw string) (map[string]any, jose.Header) {
	e.t.Helper()
	return e.VerifyWithJWKS(raw)
}

func wantOAuthError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (body %s)", r.Status, status, r.Body)
	}
	if got := r.Str(t, "error"); got != code {
		t.Fatalf("error %q, want %q (body %s)", got, code, r.Body)
	}
	if r.Str(t, "error_description") == "" {
		t.Fatalf("no error_description in %s", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if strings.Contains(string(r.Body), "eyJ") {
		t.Fatalf("error body carries a token: %s", r.Body)
	}
}
