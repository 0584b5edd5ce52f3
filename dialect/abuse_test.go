package dialect_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/atoti"
	"github.com/tokend/tokend/dialect/ocm"
	"github.com/tokend/tokend/dialect/simplejwt"
	"github.com/tokend/tokend/dialect/taiki"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/tokendtest"
)

// These tests run the four dialects on one engine, as `tokend serve` does,
// and check that the engine's defences (lockout, the per-IP failure limit,
// token verification) hold at every dialect, each answering in its own
// format (shared/spec/dialects.md; DESIGN.md "Precise points").

type response = tokendtest.Response

// The user of simplejwt's seed example.
const (
	aliceName     = "alice.williams"
	alicePassword = "S3cur3P@ssw0rd!"
	jsonType      = "application/json"
	formType      = "application/x-www-form-urlencoded"
)

// env is a tokend serving the standard endpoints and all four dialects,
// with the user alice and a confidential client that is allowed every
// grant (and so is a Taiki app too).
type env struct {
	*tokendtest.Env
	t testing.TB

	aliceID                string
	clientID, clientSecret string
}

// newEnv starts the server with limits; proxies are trusted for
// X-Forwarded-For. The engine gets an RS512 key for Atoti and keeps keys
// published as long as the longest dialect token lives, as `tokend serve`
// configures it.
func newEnv(t testing.TB, limits grant.Limits, proxies ...string) *env {
	t.Helper()
	o := tokendtest.Options{
		Config: func(c *grant.Config) {
			c.ExtraAlgs = []string{"RS512"}
			c.MaxTokenTTL = 30 * 24 * time.Hour
			c.Limits = limits
		},
		Routes: func(e *tokendtest.Env) []httpapi.Routes {
			return []httpapi.Routes{
				atoti.New(e.Engine, atoti.DefaultConfig),
				simplejwt.New(e.Engine, simplejwt.DefaultConfig),
				ocm.New(e.Engine, ocm.DefaultConfig),
				taiki.New(e.Engine, taiki.DefaultConfig),
			}
		},
	}
	for _, p := range proxies {
		o.TrustedProxies = append(o.TrustedProxies, netip.MustParsePrefix(p))
	}
	e := &env{Env: tokendtest.New(t, o), t: t}
	e.aliceID = e.AddUser(aliceName, alicePassword, "ROLE_USER")
	e.clientID, e.clientSecret = e.AddClient(false, "", nil, tokend.GrantClientCredentials, tokend.GrantPassword, tokend.GrantRefreshToken)
	return e
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// js encodes v as JSON.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// send sends a request; auth is the Authorization header and ip the
// address a trusted proxy names in X-Forwarded-For ("" for none of either).
func (e *env) send(method, path, contentType, body, auth, ip string) response {
	e.t.Helper()
	var h []string
	if auth != "" {
		h = append(h, "Authorization", auth)
	}
	if ip != "" {
		h = append(h, "X-Forwarded-For", ip)
	}
	return e.Do(method, path, contentType, body, h...)
}

// The requests of each dialect.

func (e *env) atotiBasic(user, password, ip string) response {
	e.t.Helper()
	return e.send("GET", atoti.Path, "", "", basic(user, password), ip)
}

func (e *env) sjObtain(user, password, ip string) response {
	e.t.Helper()
	return e.send("POST", simplejwt.PathObtain, jsonType, js(map[string]string{"username": user, "password": password}), "", ip)
}

// sjToken posts {field: tok} to a simplejwt path (refresh, verify, blacklist).
func (e *env) sjToken(path, field, tok, ip string) response {
	e.t.Helper()
	return e.send("POST", path, jsonType, js(map[string]string{field: tok}), "", ip)
}

func (e *env) sjRefresh(rt, ip string) response {
	e.t.Helper()
	return e.sjToken(simplejwt.PathRefresh, "refresh", rt, ip)
}

func (e *env) sjVerify(tok, ip string) response {
	e.t.Helper()
	return e.sjToken(simplejwt.PathVerify, "token", tok, ip)
}

func (e *env) sjBlacklist(rt, ip string) response {
	e.t.Helper()
	return e.sjToken(simplejwt.PathBlacklist, "refresh", rt, ip)
}

func (e *env) ocmLogin(user, password, ip string) response {
	e.t.Helper()
	return e.send("POST", ocm.Path, jsonType, "{}", basic(user, password), ip)
}

// ocmRefresh trades rt in, with auth as the Authorization header ("" for none).
func (e *env) ocmRefresh(rt, auth, ip string) response {
	e.t.Helper()
	return e.send("POST", ocm.Path, jsonType, js(map[string]string{"refreshToken": rt}), auth, ip)
}

func (e *env) taikiToken(key, sec, ip string) response {
	e.t.Helper()
	return e.send("POST", taiki.Path, jsonType, js(map[string]string{"api_key": key, "api_secret": sec}), "", ip)
}

// oauth posts a form to /oauth2/token as the confidential client.
func (e *env) oauth(ip string, kv ...string) response {
	e.t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return e.send("POST", "/oauth2/token", formType, v.Encode(), basic(e.clientID, e.clientSecret), ip)
}

func (e *env) oauthPassword(user, password, ip string) response {
	e.t.Helper()
	return e.oauth(ip, "grant_type", "password", "username", user, "password", password)
}

// introspect asks /oauth2/introspect about tok as the confidential client.
func (e *env) introspect(tok string) map[string]any {
	e.t.Helper()
	v := url.Values{"token": {tok}}.Encode()
	r := e.send("POST", "/oauth2/introspect", formType, v, basic(e.clientID, e.clientSecret), "")
	if r.Status != 200 {
		e.t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	return r.JSON(e.t)
}

// Exact error bodies of the dialects (shared/spec/dialects.md; DESIGN.md
// "Lockout answer", "Per-IP rate limit", "OCM titles").
const (
	atotiRefused      = `{}`
	atotiChallenge    = `Basic realm="atoti"`
	sjNoAccount       = `{"detail":"No active account found with the given credentials"}`
	sjTokenNotValid   = `{"detail":"Token is invalid or expired","code":"token_not_valid"}`
	sjTokenWrongType  = `{"detail":"Token has wrong type","code":"token_not_valid"}`
	sjChallenge       = `Bearer realm="api"`
	taikiIncorrect    = `{"error":"invalid_client","error_description":"Incorrect API key, API secret, or Taiki user ID provided"}`
	taikiTooMany      = `{"error":"too_many_requests","error_description":"Too many failed attempts, retry later"}`
	oauthBadLogin     = `{"error":"invalid_grant","error_description":"invalid username or password"}`
	oauthLocked       = `{"error":"invalid_grant","error_description":"too many failed attempts, retry later"}`
	oauthThrottled    = `{"error":"invalid_request","error_description":"too many failed requests from this address, retry later"}`
	ocmChallenge      = `Basic realm="ocm"`
	ocmRefreshPath    = "$.refreshToken"
	ocmRefreshInvalid = "The refresh token is invalid, expired or revoked."
	ocmBadCredentials = "The username or password is incorrect."
	ocmTooMany        = "Too many failed attempts. Retry later."
)

// ocmBody is an ExceptionDetail as the OCM dialect writes it.
func ocmBody(status int, code, detail, errorPath string) string {
	types := map[int][2]string{
		400: {"https://www.rfc-editor.org/rfc/rfc9110#section-15.5.1", "Illegal Argument"},
		401: {"https://www.rfc-editor.org/rfc/rfc9110#section-15.5.2", "Unauthorized"},
		429: {"https://www.rfc-editor.org/rfc/rfc6585#section-4", "Too Many Requests"},
	}
	m := map[string]any{
		"type": types[status][0], "title": types[status][1], "status": status,
		"detail": detail, "o:errorCode": code,
	}
	if errorPath != "" {
		m["o:errorPath"] = errorPath
	}
	return js(m)
}

// answer is an error answer a test expects: the status, the exact body
// (given the Retry-After seconds, for a 429) and the challenge, if the
// dialect sends one.
type answer struct {
	status    int
	body      func(retryAfter int) string
	challenge string
}

func fixed(status int, body, challenge string) answer {
	return answer{status: status, body: func(int) string { return body }, challenge: challenge}
}

// The answers, one per dialect and refusal.
var (
	atoti401    = fixed(401, atotiRefused, atotiChallenge)
	atoti429    = fixed(429, atotiRefused, "")
	sjBadLogin  = fixed(400, sjNoAccount, "")
	sjBadToken  = fixed(401, sjTokenNotValid, sjChallenge)
	sjWrongType = fixed(401, sjTokenWrongType, sjChallenge)
	sj429       = answer{status: 429, body: func(n int) string {
		return js(map[string]string{"detail": fmt.Sprintf("Request was throttled. Expected available in %d seconds.", n)})
	}}
	ocmBadLogin   = fixed(401, ocmBody(401, ocm.CodeBadCredentials, ocmBadCredentials, ""), ocmChallenge)
	ocmBadRefresh = fixed(400, ocmBody(400, ocm.CodeRefreshTokenInvalid, ocmRefreshInvalid, ocmRefreshPath), "")
	ocm429        = fixed(429, ocmBody(429, ocm.CodeTooManyRequests, ocmTooMany, ""), "")
	taiki401      = fixed(401, taikiIncorrect, "")
	taiki429      = fixed(429, taikiTooMany, "")
	oauth400      = fixed(400, oauthBadLogin, "")
	oauthLock429  = fixed(429, oauthLocked, "")
	oauthIP429    = fixed(429, oauthThrottled, "")
)

// check compares r with the answer and returns its Retry-After seconds (0
// unless a 429). The body must be exactly the expected JSON, and, like
// every error body, carry no token.
func (a answer) check(t *testing.T, r response) int {
	t.Helper()
	if r.Status != a.status {
		t.Fatalf("status %d, want %d (body %s)", r.Status, a.status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != jsonType {
		t.Fatalf("Content-Type %q, want %q", ct, jsonType)
	}
	n := 0
	if a.status == 429 {
		var err error
		if n, err = strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Fatalf("429 with Retry-After %q", r.Header.Get("Retry-After"))
		}
	} else if ra := r.Header.Get("Retry-After"); ra != "" {
		t.Fatalf("%d with Retry-After %q", r.Status, ra)
	}
	if !jsonEqual(r.Body, a.body(n)) {
		t.Fatalf("body %s\nwant %s", r.Body, a.body(n))
	}
	if wa := r.Header.Get("WWW-Authenticate"); wa != a.challenge {
		t.Fatalf("WWW-Authenticate %q, want %q", wa, a.challenge)
	}
	if strings.Contains(string(r.Body), "eyJ") || strings.Contains(string(r.Body), "rt1_") {
		t.Fatalf("error body carries a token: %s", r.Body)
	}
	return n
}

// jsonEqual reports whether got is the same JSON document as want.
func jsonEqual(got []byte, want string) bool {
	var g, w any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	return reflect.DeepEqual(g, w)
}

// wantOK checks a 200 JSON answer with non-empty string fields keys and
// returns the body.
func wantOK(t *testing.T, r response, keys ...string) map[string]any {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d, want 200 (body %s)", r.Status, r.Body)
	}
	m := r.JSON(t)
	for _, k := range keys {
		if s, _ := m[k].(string); s == "" {
			t.Fatalf("no %q in %s", k, r.Body)
		}
	}
	return m
}

// str returns a string field of a JSON object.
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// login is one place where a user logs in with a password.
type login struct {
	name string
	try  func(e *env, user, password, ip string) response
	// wrong is the answer to a wrong password, locked to a locked account.
	wrong, locked answer
	// ok checks a successful login.
	ok func(t *testing.T, r response)
}

var logins = []login{
	{"atoti", (*env).atotiBasic, atoti401, atoti429, func(t *testing.T, r response) {
		t.Helper()
		wantOK(t, r, "token")
	}},
	{"simplejwt", (*env).sjObtain, sjBadLogin, sj429, func(t *testing.T, r response) {
		t.Helper()
		wantOK(t, r, "refresh", "access")
	}},
	{"ocm", (*env).ocmLogin, ocmBadLogin, ocm429, func(t *testing.T, r response) {
		t.Helper()
		wantOK(t, r, "accessToken", "refreshToken")
	}},
	{"oauth", (*env).oauthPassword, oauth400, oauthLock429, func(t *testing.T, r response) {
		t.Helper()
		wantOK(t, r, "access_token", "refresh_token")
	}},
}

// Indices into logins.
const (
	atotiLogin = iota
	sjLogin
	ocmLogin
	oauthLogin
)

var lockoutLimits = grant.Limits{LockoutThreshold: 3, LockoutBase: time.Minute, LockoutMax: 15 * time.Minute}

// TestLockoutAcrossDialects: failed logins count toward one account's
// lockout wherever they happen; once locked, every dialect refuses the
// account, even with the right password, with 429, Retry-After and its own
// body; when the lock ends the right password works and resets the count.
func TestLockoutAcrossDialects(t *testing.T) {
	e := newEnv(t, lockoutLimits)
	bobPassword := "bob's own password"
	e.AddUser("bob", bobPassword, "ROLE_USER")
	cases := []struct {
		name  string
		fails []int // where the three failed logins happen
	}{
		{"three at atoti", []int{atotiLogin, atotiLogin, atotiLogin}},
		{"three at simplejwt", []int{sjLogin, sjLogin, sjLogin}},
		{"three at ocm", []int{ocmLogin, ocmLogin, ocmLogin}},
		{"three at oauth", []int{oauthLogin, oauthLogin, oauthLogin}},
		{"atoti, simplejwt, ocm", []int{atotiLogin, sjLogin, ocmLogin}},
		{"ocm, oauth, simplejwt", []int{ocmLogin, oauthLogin, sjLogin}},
		{"simplejwt, atoti, oauth", []int{sjLogin, atotiLogin, oauthLogin}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			user, password := fmt.Sprintf("user%d", i), fmt.Sprintf("password of user %d", i)
			e.AddUser(user, password, "ROLE_USER")
			// Two failures lock nothing.
			for _, p := range c.fails[:2] {
				logins[p].wrong.check(t, logins[p].try(e, user, "wrong", ""))
			}
			for _, l := range logins {
				t.Run("two failures do not lock at "+l.name, func(t *testing.T) {
					l.ok(t, l.try(e, user, password, ""))
				})
			}
			// The success reset the count: three fresh failures lock.
			for _, p := range c.fails {
				logins[p].wrong.check(t, logins[p].try(e, user, "wrong", ""))
			}
			for _, l := range logins {
				t.Run("locked at "+l.name, func(t *testing.T) {
					for _, pw := range []string{password, "wrong"} {
						if n := l.locked.check(t, l.try(e, user, pw, "")); n < 55 || n > 60 {
							t.Fatalf("Retry-After %d, want about 60", n)
						}
					}
				})
			}
			// Other accounts are not affected.
			for _, l := range logins {
				l.ok(t, l.try(e, "bob", bobPassword, ""))
			}
			// The lock ends; refused attempts did not extend it.
			e.Clock.Advance(61 * time.Second)
			last := logins[c.fails[2]]
			last.ok(t, last.try(e, user, password, ""))
			// That success reset the count: two more failures lock nothing.
			for _, p := range c.fails[1:] {
				logins[p].wrong.check(t, logins[p].try(e, user, "wrong", ""))
			}
			for _, l := range logins {
				t.Run("reset at "+l.name, func(t *testing.T) {
					l.ok(t, l.try(e, user, password, ""))
				})
			}
		})
	}
}

// TestLockoutRevealsNoAccount: an unknown username is counted and locked
// exactly like a real one, at every dialect: the same status, body and
// headers at every step.
func TestLockoutRevealsNoAccount(t *testing.T) {
	e := newEnv(t, lockoutLimits)
	cases := []struct {
		name  string
		steps []int // where each attempt happens
	}{
		{"atoti", []int{atotiLogin, atotiLogin, atotiLogin, atotiLogin, atotiLogin}},
		{"simplejwt", []int{sjLogin, sjLogin, sjLogin, sjLogin, sjLogin}},
		{"ocm", []int{ocmLogin, ocmLogin, ocmLogin, ocmLogin, ocmLogin}},
		{"oauth", []int{oauthLogin, oauthLogin, oauthLogin, oauthLogin, oauthLogin}},
		{"every dialect", []int{atotiLogin, sjLogin, ocmLogin, oauthLogin, atotiLogin, sjLogin, ocmLogin}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			real, ghost := fmt.Sprintf("real%d", i), fmt.Sprintf("ghost%d", i)
			password := "the real one's password"
			e.AddUser(real, password)
			for step, p := range c.steps {
				l := logins[p]
				pw := "wrong"
				if step >= lockoutLimits.LockoutThreshold {
					pw = password // locked: even the right one is refused
				}
				want := l.wrong
				if step >= lockoutLimits.LockoutThreshold {
					want = l.locked
				}
				r, g := l.try(e, real, pw, ""), l.try(e, ghost, pw, "")
				want.check(t, r)
				want.check(t, g)
				if !jsonEqual(r.Body, string(g.Body)) || r.Header.Get("WWW-Authenticate") != g.Header.Get("WWW-Authenticate") {
					t.Fatalf("step %d at %s: real %d %s, unknown %d %s", step, l.name, r.Status, r.Body, g.Status, g.Body)
				}
				if ra, ga := r.Header.Get("Retry-After"), g.Header.Get("Retry-After"); ra != ga {
					t.Fatalf("step %d at %s: Retry-After %q for the real account, %q for the unknown one", step, l.name, ra, ga)
				}
			}
			// When the lock ends, one more failure locks both again, for
			// twice as long.
			e.Clock.Advance(61 * time.Second)
			for i, l := range logins {
				want := l.locked
				if i == 0 {
					want = l.wrong
				}
				r, g := l.try(e, real, "wrong", ""), l.try(e, ghost, "wrong", "")
				want.check(t, r)
				n := want.check(t, g)
				if !jsonEqual(r.Body, string(g.Body)) || r.Header.Get("Retry-After") != g.Header.Get("Retry-After") {
					t.Fatalf("after the lock at %s: real %s, unknown %s", l.name, r.Body, g.Body)
				}
				if i > 0 && (n < 115 || n > 120) {
					t.Fatalf("Retry-After %d, want about 120", n)
				}
			}
		})
	}
}
