package atoti_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/atoti"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/tokendtest"
)

type response = tokendtest.Response

const (
	path     = atoti.Path
	alicePwd = "correct horse battery staple"
	bobPwd   = "p@ss:word with a colon"
	nonePwd  = "no roles here"
)

// env is a tokend serving the atoti dialect, with users alice
// (ROLE_USER), bob (ROLE_USER, ROLE_ADMIN), norole (no roles) and carol
// (disabled), and two confidential clients allowed client_credentials.
type env struct {
	*tokendtest.Env
	t *testing.T

	aliceID, bobID, noroleID, carolID string
	clientID, clientSecret            string
	otherID, otherSecret              string
}

// newEnv starts a tokend with the atoti dialect configured by cfg. The
// engine gets an RS512 key, as `tokend serve` does for Atoti's algorithm.
func newEnv(t *testing.T, cfg atoti.Config) *env {
	t.Helper()
	te := tokendtest.New(t, tokendtest.Options{
		Config: func(c *grant.Config) { c.ExtraAlgs = []string{"RS512"} },
		Routes: func(e *tokendtest.Env) []httpapi.Routes {
			return []httpapi.Routes{atoti.New(e.Engine, cfg)}
		},
	})
	e := &env{Env: te, t: t}
	e.aliceID = e.AddUser("alice", alicePwd, "ROLE_USER")
	e.bobID = e.AddUser("bob", bobPwd, "ROLE_USER", "ROLE_ADMIN")
	e.noroleID = e.AddUser("norole", nonePwd)
	e.carolID = e.AddUser("carol", "carol's password", "ROLE_USER")
	if err := e.Store.DisableUser(context.Background(), e.carolID, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.clientID, e.clientSecret = e.AddClient(false, "", nil, tokend.GrantClientCredentials)
	e.otherID, e.otherSecret = e.AddClient(false, "", nil, tokend.GrantClientCredentials)
	return e
}

// basic returns an Authorization header value for HTTP Basic (RFC 7617).
func basic(user, pwd string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pwd))
}

// get sends GET to p with an Authorization header (none if auth is "").
func (e *env) get(p, auth string, header ...string) response {
	e.t.Helper()
	if auth != "" {
		header = append(header, "Authorization", auth)
	}
	return e.Do("GET", p, "", "", header...)
}

// login runs a Basic login and returns the token.
func (e *env) login(t *testing.T, user, pwd string) string {
	t.Helper()
	return wantToken(t, e.get(path, basic(user, pwd)))
}

// ccToken returns a standard OAuth access token from client_credentials.
func (e *env) ccToken(t *testing.T, id, sec string) string {
	t.Helper()
	req, err := http.NewRequest("POST", e.Srv.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, sec)
	r := e.Send(req)
	if r.Status != 200 {
		t.Fatalf("client_credentials: %d %s", r.Status, r.Body)
	}
	return r.Str(t, "access_token")
}

// oauthForm posts a form to a standard endpoint as client id.
func (e *env) oauthForm(t *testing.T, p, id, sec string, v url.Values) response {
	t.Helper()
	req, err := http.NewRequest("POST", e.Srv.URL+p, strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, sec)
	return e.Send(req)
}

func (e *env) introspect(t *testing.T, tok string) map[string]any {
	t.Helper()
	r := e.oauthForm(t, "/oauth2/introspect", e.clientID, e.clientSecret, url.Values{"token": {tok}})
	if r.Status != 200 {
		t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)
}

func (e *env) revoke(t *testing.T, id, sec, tok string) {
	t.Helper()
	if r := e.oauthForm(t, "/oauth2/revoke", id, sec, url.Values{"token": {tok}}); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
}

// wantInactive checks that introspection says exactly {"active": false}.
func (e *env) wantInactive(t *testing.T, tok string) {
	t.Helper()
	if m := e.introspect(t, tok); len(m) != 1 || m["active"] != false {
		t.Fatalf("introspection %v, want {\"active\": false}", m)
	}
}

// metric returns the line of /metrics that starts with name{labels}.
func (e *env) metric(t *testing.T, series string) string {
	t.Helper()
	body := string(e.Do("GET", "/metrics", "", "").Body)
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, series+" ") {
			return line
		}
	}
	return ""
}

// jwksKey returns the JWKS entry of kid.
func (e *env) jwksKey(t *testing.T, kid string) jose.JSONWebKey {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(e.Do("GET", "/.well-known/jwks.json", "", "").Body, &set); err != nil {
		t.Fatal(err)
	}
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS", kid, len(keys))
	}
	return keys[0]
}

// wantToken checks a 200 {"token": "..."} answer and returns the token.
func wantToken(t *testing.T, r response) string {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d, want 200 (body %s)", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}
	m := r.JSON(t)
	tok, ok := m["token"].(string)
	if len(m) != 1 || !ok || tok == "" {
		t.Fatalf("body %s, want exactly {\"token\": \"<jwt>\"}", r.Body)
	}
	return tok
}

// wantUnauthorized checks the dialect's 401: body {}, JSON, and the
// Basic challenge.
func wantUnauthorized(t *testing.T, r response) {
	t.Helper()
	if r.Status != 401 {
		t.Fatalf("status %d, want 401 (body %s)", r.Status, r.Body)
	}
	if string(r.Body) != "{}" {
		t.Fatalf("body %q, want {}", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if wa := r.Header.Get("WWW-Authenticate"); wa != `Basic realm="atoti"` {
		t.Fatalf("WWW-Authenticate %q", wa)
	}
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)
