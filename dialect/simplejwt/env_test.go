package simplejwt_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/simplejwt"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/tokendtest"
)

type response = tokendtest.Response

// The user of the seed's example request.
const (
	aliceName     = "alice.williams"
	alicePassword = "S3cur3P@ssw0rd!"
)

// refreshAud is the audience of the dialect's refresh JWTs.
var refreshAud = grant.RefreshAudience(tokendtest.Issuer)

const (
	day      = 24 * time.Hour
	jsonType = "application/json"
	formType = "application/x-www-form-urlencoded"
)

// Exact bodies of the dialect's errors (shared/spec/dialects.md, simplejwt).
const (
	noAccount     = `{"detail":"No active account found with the given credentials"}`
	tokenNotValid = `{"detail":"Token is invalid or expired","code":"token_not_valid"}`
	blacklisted   = `{"detail":"Token is blacklisted","code":"token_not_valid"}`
	wrongType     = `{"detail":"Token has wrong type","code":"token_not_valid"}`
	tooLarge      = `{"detail":"Request body too large."}`
	serverError   = `{"detail":"A server error occurred."}`
	unavailable   = `{"detail":"Service temporarily unavailable, try again later."}`
)

// parseError is the answer to a JSON body Python cannot read.
func parseError(reason string) string {
	return js(map[string]string{"detail": "JSON parse error - " + reason})
}

// mediaType is the answer to a body of an unsupported media type.
func mediaType(ct string) string {
	return js(map[string]string{"detail": `Unsupported media type "` + ct + `" in request.`})
}

// notDict is the answer to a JSON body that is no object.
func notDict(typ string) string {
	return `{"non_field_errors":["Invalid data. Expected a dictionary, but got ` + typ + `."]}`
}

// wantToken checks stock simplejwt's answer to a refused token: 401 with
// its challenge and body (tokenNotValid, blacklisted or wrongType).
func wantToken(t *testing.T, r response, body string) {
	t.Helper()
	want(t, r, 401, body)
	if wa := r.Header.Get("WWW-Authenticate"); wa != `Bearer realm="api"` {
		t.Fatalf("WWW-Authenticate %q", wa)
	}
}

// env is a running tokend serving the dialect, with the user alice.williams
// and a confidential client to introspect and revoke with.
type env struct {
	*tokendtest.Env
	t *testing.T

	aliceID                string
	clientID, clientSecret string
}

func newEnv(t *testing.T, cfg simplejwt.Config, opts ...func(*tokendtest.Options)) *env {
	t.Helper()
	o := tokendtest.Options{Routes: func(e *tokendtest.Env) []httpapi.Routes {
		return []httpapi.Routes{simplejwt.New(e.Engine, cfg)}
	}}
	for _, opt := range opts {
		opt(&o)
	}
	e := &env{Env: tokendtest.New(t, o), t: t}
	e.aliceID = e.AddUser(aliceName, alicePassword, "ROLE_USER")
	e.clientID, e.clientSecret = e.AddClient(false, "", nil, tokend.GrantClientCredentials)
	return e
}

// post sends a JSON body to path.
func (e *env) post(path, body string) response {
	e.t.Helper()
	return e.Do("POST", path, jsonType, body)
}

// js encodes v as JSON.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// obtain logs alice in and returns her refresh and access tokens.
func (e *env) obtain() (refresh, access string) {
	e.t.Helper()
	r := e.post("/api/v1/token/", js(map[string]string{"username": aliceName, "password": alicePassword}))
	if r.Status != 200 {
		e.t.Fatalf("obtain: %d %s", r.Status, r.Body)
	}
	return r.Str(e.t, "refresh"), r.Str(e.t, "access")
}

func (e *env) refresh(rt string) response {
	e.t.Helper()
	return e.post("/api/v1/token/refresh/", js(map[string]string{"refresh": rt}))
}

func (e *env) verify(tok string) response {
	e.t.Helper()
	return e.post("/api/v1/token/verify/", js(map[string]string{"token": tok}))
}

func (e *env) blacklist(rt string) response {
	e.t.Helper()
	return e.post("/api/v1/token/blacklist/", js(map[string]string{"refresh": rt}))
}

// introspect asks /oauth2/introspect about tok as the confidential client.
func (e *env) introspect(tok string) map[string]any {
	e.t.Helper()
	r := e.oauth("/oauth2/introspect", url.Values{"token": {tok}})
	if r.Status != 200 {
		e.t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	return r.JSON(e.t)
}

// revoke revokes tok through /oauth2/revoke as the confidential client.
func (e *env) revoke(tok string) {
	e.t.Helper()
	if r := e.oauth("/oauth2/revoke", url.Values{"token": {tok}}); r.Status != 200 {
		e.t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
}

func (e *env) oauth(path string, v url.Values) response {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.Srv.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", formType)
	req.SetBasicAuth(e.clientID, e.clientSecret)
	return e.Send(req)
}

// metric returns the value of the series of name whose labels include
// every label="value" pair given (0 when there is none).
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	r := e.Do("GET", "/metrics", "", "")
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		series, value, _ := strings.Cut(line, " ")
		match := true
		for _, l := range labels {
			match = match && strings.Contains(series, l)
		}
		if match {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				e.t.Fatalf("metric %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// user reads a user back from the store.
func (e *env) user(id string) *tokend.User {
	e.t.Helper()
	u, err := e.Store.UserByID(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// want checks a response's status, JSON content type and exact body. An
// error body must never carry a token.
func want(t *testing.T, r response, status int, body string) {
	t.Helper()
	if r.Status != status || string(r.Body) != body {
		t.Fatalf("got %d %s\nwant %d %s", r.Status, r.Body, status, body)
	}
	if ct := r.Header.Get("Content-Type"); ct != jsonType {
		t.Fatalf("Content-Type %q, want %q", ct, jsonType)
	}
	if status != 200 && strings.Contains(string(r.Body), "eyJ") {
		t.Fatalf("error body carries a token: %s", r.Body)
	}
}

// wantKeys checks that m has exactly the given keys.
func wantKeys(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	if len(m) != len(keys) {
		t.Fatalf("got keys %v, want %v", m, keys)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Fatalf("no %q in %v", k, m)
		}
	}
}

// generation names a refresh token's session and counter.
type generation struct {
	sid string
	ctr int64
}

func (e *env) generation(rt string) generation {
	e.t.Helper()
	c, _ := e.VerifyWithJWKSFor(rt, refreshAud)
	sid, _ := c["sid"].(string)
	return generation{sid, num(e.t, c["ctr"])}
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func num(t *testing.T, v any) int64 {
	t.Helper()
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%v is not a number", v)
	}
	return int64(f)
}
