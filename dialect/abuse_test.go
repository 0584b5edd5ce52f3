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

func (e *env) atotiBearer(scheme, tok, ip string) response {
	e.t.Helper()
	return e.send("GET", atoti.Path, "", "", scheme+" "+tok, ip)
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

// throttled is one request to a place that checks a credential or a
// token, with correct credentials; refused is its 429.
type throttled struct {
	name    string
	do      func(ip string) response
	ok      func(t *testing.T, r response)
	refused answer
	bug     string // why the refusal is skipped, if it shows a bug
	// token: the request presents only a token (no password or client
	// secret), so the per-IP limit never refuses it.
	token bool
}

// genuine holds live tokens of every kind, obtained from no address in
// particular (the proxy itself).
type genuine struct {
	atoti               string // an Atoti token (RS512)
	sjAccess, sjRefresh string // a simplejwt pair
	ocmAccess, ocmRef   string // an OCM pair
	ccAccess            string // a client_credentials token from /oauth2/token
	oauthAccess         string // a password-grant pair from /oauth2/token
	oauthRefresh        string
}

func (e *env) genuine(t *testing.T) genuine {
	t.Helper()
	var g genuine
	g.atoti = str(wantOK(t, e.atotiBasic(aliceName, alicePassword, ""), "token"), "token")
	m := wantOK(t, e.sjObtain(aliceName, alicePassword, ""), "refresh", "access")
	g.sjAccess, g.sjRefresh = str(m, "access"), str(m, "refresh")
	m = wantOK(t, e.ocmLogin(aliceName, alicePassword, ""), "accessToken", "refreshToken")
	g.ocmAccess, g.ocmRef = str(m, "accessToken"), str(m, "refreshToken")
	g.ccAccess = str(wantOK(t, e.oauth("", "grant_type", "client_credentials"), "access_token"), "access_token")
	m = wantOK(t, e.oauthPassword(aliceName, alicePassword, ""), "access_token", "refresh_token")
	g.oauthAccess, g.oauthRefresh = str(m, "access_token"), str(m, "refresh_token")
	return g
}

// places are the correct requests of every dialect, and how each is
// refused from an address over the failure limit.
func (e *env) places(t *testing.T, g genuine) []throttled {
	t.Helper()
	ok := func(keys ...string) func(*testing.T, response) {
		return func(t *testing.T, r response) {
			t.Helper()
			wantOK(t, r, keys...)
		}
	}
	empty := func(t *testing.T, r response) {
		t.Helper()
		if r.Status != 200 || !jsonEqual(r.Body, `{}`) {
			t.Fatalf("got %d %s, want 200 {}", r.Status, r.Body)
		}
	}
	return []throttled{
		{"atoti Basic", func(ip string) response { return e.atotiBasic(aliceName, alicePassword, ip) }, ok("token"), atoti429, "", false},
		{"atoti Bearer", func(ip string) response { return e.atotiBearer("Bearer", g.atoti, ip) }, ok("token"), atoti429, "", true},
		{"atoti Jwt", func(ip string) response { return e.atotiBearer("Jwt", g.atoti, ip) }, ok("token"), atoti429, "", true},
		{"simplejwt obtain", func(ip string) response { return e.sjObtain(aliceName, alicePassword, ip) }, ok("refresh", "access"), sj429, "", false},
		{"simplejwt refresh", func(ip string) response { return e.sjRefresh(g.sjRefresh, ip) }, ok("access"), sj429, "", true},
		{"simplejwt verify", func(ip string) response { return e.sjVerify(g.sjAccess, ip) }, empty, sj429, "", true},
		{"simplejwt blacklist", func(ip string) response {
			// A fresh session each time, as blacklisting ends it; a
			// failed login here leaves rt empty, and the check fails.
			var pair struct{ Refresh string }
			json.Unmarshal(e.sjObtain(aliceName, alicePassword, "").Body, &pair)
			return e.sjBlacklist(pair.Refresh, ip)
		}, empty, sj429, "", true},
		{"ocm login", func(ip string) response { return e.ocmLogin(aliceName, alicePassword, ip) }, ok("accessToken", "refreshToken"), ocm429, "", false},
		{"ocm refresh", func(ip string) response { return e.ocmRefresh(g.ocmRef, "", ip) }, ok("accessToken", "refreshToken"), ocm429, "", true},
		{"ocm refresh with Basic", func(ip string) response { return e.ocmRefresh(g.ocmRef, basic(aliceName, alicePassword), ip) }, ok("accessToken", "refreshToken"), ocm429, "", false},
		{"taiki", func(ip string) response { return e.taikiToken(e.clientID, e.clientSecret, ip) }, ok("access_token", "taiki_user_id"), taiki429, "", false},
		{"oauth client_credentials", func(ip string) response { return e.oauth(ip, "grant_type", "client_credentials") }, ok("access_token"), oauthIP429, "", false},
		{"oauth password", func(ip string) response { return e.oauthPassword(aliceName, alicePassword, ip) }, ok("access_token"), oauthIP429, "", false},
	}
}

// unsigned is an alg "none" token claiming to be alice's simplejwt access
// token: the simplest forgery.
func (e *env) unsigned() string {
	now := e.Clock.Now()
	return tokendtest.Sign(map[string]any{"alg": "none", "typ": "JWT"}, map[string]any{
		"iss": tokendtest.Issuer, "sub": e.aliceID, "aud": tokendtest.Issuer, "user_id": e.aliceID,
		"token_type": "access", "jti": "0123456789abcdef0123456789abcdef",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}, nil)
}

var rateLimits = grant.Limits{RateLimit: 5, RateWindow: time.Minute}

// TestRateLimitAcrossDialects: failed password and client-secret checks at
// any dialect count toward one per-IP limit; past it every dialect refuses
// that address's password and client-secret checks with 429, Retry-After
// and its own body, while requests that present a token, other addresses
// and correct traffic are served.
func TestRateLimitAcrossDialects(t *testing.T) {
	e := newEnv(t, rateLimits, "127.0.0.1/32")
	const attacker, other = "203.0.113.1", "203.0.113.2"
	g := e.genuine(t)
	places := e.places(t, g)
	// Correct traffic, far past the limit, is never throttled.
	for range 3 {
		for _, p := range places {
			p.ok(t, p.do(attacker))
		}
	}
	failures := []struct {
		name string
		do   func() response
		want answer
	}{
		{"wrong Basic at atoti", func() response { return e.atotiBasic(aliceName, "wrong", attacker) }, atoti401},
		{"wrong api_secret at taiki", func() response { return e.taikiToken(e.clientID, "wrong", attacker) }, taiki401},
		{"wrong password at simplejwt", func() response { return e.sjObtain(aliceName, "wrong", attacker) }, sjBadLogin},
		{"wrong Basic at ocm", func() response { return e.ocmLogin(aliceName, "wrong", attacker) }, ocmBadLogin},
		{"unknown user at atoti", func() response { return e.atotiBasic("nobody", "wrong", attacker) }, atoti401},
	}
	// Forged tokens are refused as such and never count.
	forged := e.unsigned()
	for range 3 * rateLimits.RateLimit {
		atoti401.check(t, e.atotiBearer("Bearer", forged, attacker))
	}
	p0 := places[len(places)-1]
	p0.ok(t, p0.do(attacker))
	for _, f := range failures[:rateLimits.RateLimit] {
		f.want.check(t, f.do())
	}
	for _, p := range places {
		if p.token {
			t.Run(p.name+" serves the address: a token is no guess", func(t *testing.T) {
				p.ok(t, p.do(attacker))
			})
			continue
		}
		t.Run(p.name+" refuses the address", func(t *testing.T) {
			if p.bug != "" {
				t.Skip("BUG: " + p.bug)
			}
			if n := p.refused.check(t, p.do(attacker)); n > 60 {
				t.Fatalf("Retry-After %d, want at most the window", n)
			}
		})
		t.Run(p.name+" serves another address", func(t *testing.T) {
			p.ok(t, p.do(other))
		})
	}
	// Refused requests did not count: the window ends on time.
	e.Clock.Advance(61 * time.Second)
	for _, p := range places {
		t.Run(p.name+" serves the address again", func(t *testing.T) {
			p.ok(t, p.do(attacker))
		})
	}
}

// failure is a request that fails a credential or token check: want is
// its answer, over the dialect's 429 once the address is over the limit.
// bug, if set, is why the case is skipped.
type failure struct {
	do         func(ip string) response
	want, over answer
	bug        string
}

// TestForgedTokensNeverCount: a token cannot be guessed, so a forged,
// expired or broken one at any dialect never counts toward the per-IP
// limit, and is refused as a bad token, never with 429 (one broken
// service behind a shared address must not lock everyone out).
func TestForgedTokensNeverCount(t *testing.T) {
	e := newEnv(t, rateLimits, "127.0.0.1/32")
	forged := e.unsigned()
	cases := []struct {
		name string
		do   func(ip string) response
		want answer
	}{
		{"forged Bearer at atoti", func(ip string) response { return e.atotiBearer("Bearer", forged, ip) }, atoti401},
		{"forged Jwt at atoti", func(ip string) response { return e.atotiBearer("Jwt", forged, ip) }, atoti401},
		{"forged refresh at simplejwt", func(ip string) response { return e.sjRefresh(forged, ip) }, sjBadToken},
		{"forged token at simplejwt verify", func(ip string) response { return e.sjVerify(forged, ip) }, sjBadToken},
		{"forged refresh at simplejwt blacklist", func(ip string) response { return e.sjBlacklist(forged, ip) }, sjBadToken},
		{"forged refreshToken at ocm", func(ip string) response { return e.ocmRefresh(forged, "", ip) }, ocmBadRefresh},
		{"forged refreshToken at ocm with Basic", func(ip string) response {
			return e.ocmRefresh(forged, basic(aliceName, alicePassword), ip)
		}, ocmBadRefresh},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ip := fmt.Sprintf("198.51.100.%d", 100+i)
			for range 4 * rateLimits.RateLimit {
				c.want.check(t, c.do(ip))
			}
			wantOK(t, e.taikiToken(e.clientID, e.clientSecret, ip), "access_token")
		})
	}
}

// TestEveryFailureCounts: each kind of failed password or client-secret
// check, at every dialect, counts toward the per-IP limit on its own.
func TestEveryFailureCounts(t *testing.T) {
	e := newEnv(t, rateLimits, "127.0.0.1/32")
	const ghostClient = "00000000-0000-4000-8000-000000000000" // no such app
	atoti := func(do func(ip string) response) failure { return failure{do: do, want: atoti401, over: atoti429} }
	sj := func(do func(ip string) response, want answer) failure {
		return failure{do: do, want: want, over: sj429}
	}
	ocmF := func(do func(ip string) response, want answer) failure {
		return failure{do: do, want: want, over: ocm429}
	}
	taikiF := func(do func(ip string) response) failure { return failure{do: do, want: taiki401, over: taiki429} }
	cases := []struct {
		name string
		failure
	}{
		{"wrong password at atoti", atoti(func(ip string) response { return e.atotiBasic(aliceName, "wrong", ip) })},
		{"unknown user at atoti", atoti(func(ip string) response { return e.atotiBasic("nobody", "wrong", ip) })},
		{"wrong password at simplejwt", sj(func(ip string) response { return e.sjObtain(aliceName, "wrong", ip) }, sjBadLogin)},
		{"wrong password at ocm", ocmF(func(ip string) response { return e.ocmLogin(aliceName, "wrong", ip) }, ocmBadLogin)},
		{"wrong api_secret at taiki", taikiF(func(ip string) response { return e.taikiToken(e.clientID, "wrong", ip) })},
		{"unknown api_key at taiki", taikiF(func(ip string) response { return e.taikiToken(ghostClient, "wrong", ip) })},
		{"non-UUID api_key at taiki", taikiF(func(ip string) response { return e.taikiToken("not-a-uuid", "wrong", ip) })},
		{"wrong password at oauth", failure{do: func(ip string) response { return e.oauthPassword(aliceName, "wrong", ip) }, want: oauth400, over: oauthIP429}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.bug != "" {
				t.Skip("BUG: " + c.bug)
			}
			ip := fmt.Sprintf("198.51.100.%d", i+1)
			for range rateLimits.RateLimit {
				c.want.check(t, c.do(ip))
			}
			// Over the limit: a correct request from the address is refused,
			// and so is the failing one, in its dialect's body.
			if n := taiki429.check(t, e.taikiToken(e.clientID, e.clientSecret, ip)); n > 60 {
				t.Fatalf("Retry-After %d", n)
			}
			c.over.check(t, c.do(ip))
		})
	}
}

// tokenPlace is a place of a dialect that accepts a token, and its answer
// to one it refuses.
type tokenPlace struct {
	name    string
	offer   func(e *env, tok string) response
	refused answer
}

var tokenPlaces = []tokenPlace{
	{"atoti Bearer", func(e *env, tok string) response { return e.atotiBearer("Bearer", tok, "") }, atoti401},
	{"atoti Jwt", func(e *env, tok string) response { return e.atotiBearer("Jwt", tok, "") }, atoti401},
	{"simplejwt verify", func(e *env, tok string) response { return e.sjVerify(tok, "") }, sjBadToken},
	{"simplejwt refresh", func(e *env, tok string) response { return e.sjRefresh(tok, "") }, sjBadToken},
	{"simplejwt blacklist", func(e *env, tok string) response { return e.sjBlacklist(tok, "") }, sjBadToken},
	{"ocm refreshToken", func(e *env, tok string) response { return e.ocmRefresh(tok, "", "") }, ocmBadRefresh},
	{"ocm refreshToken with Basic", func(e *env, tok string) response {
		return e.ocmRefresh(tok, basic(aliceName, alicePassword), "")
	}, ocmBadRefresh},
}

// Indices into tokenPlaces.
const (
	atotiBearer = iota
	atotiJwt
	sjVerify
	sjRefresh
	sjBlacklist
	ocmRefresh
	ocmRefreshBasic
)

// TestForgedTokens offers forged and broken tokens to every place of every
// dialect that accepts a token: each is refused with that place's own
// answer, no jku or x5u URL is ever fetched, and the genuine tokens the
// forgeries were made from still work afterwards.
func TestForgedTokens(t *testing.T) {
	e := newEnv(t, grant.Limits{})
	g := e.genuine(t)
	f := e.NewForger()

	// Tokens from another install of tokend, of every kind.
	o := newEnv(t, grant.Limits{})
	og := o.genuine(t)

	type offer struct {
		name string
		tok  string
		at   []int // indices into tokenPlaces
	}
	all := []int{atotiBearer, atotiJwt, sjVerify, sjRefresh, sjBlacklist, ocmRefresh, ocmRefreshBasic}
	var offers []offer
	for _, set := range []struct{ name, tok string }{
		{"client_credentials token", g.ccAccess},
		{"simplejwt access token", g.sjAccess},
		{"simplejwt refresh token", g.sjRefresh},
	} {
		for _, fg := range f.Forgeries(set.tok) {
			offers = append(offers, offer{set.name + ": " + fg.Name, fg.Token, all})
		}
	}
	offers = append(offers,
		// A refresh token where only access tokens go.
		offer{"simplejwt refresh token as a bearer", g.sjRefresh, []int{atotiBearer, atotiJwt}},
		offer{"ocm refresh token as a bearer", g.ocmRef, []int{atotiBearer, atotiJwt}},
		offer{"oauth refresh token as a bearer", g.oauthRefresh, []int{atotiBearer, atotiJwt}},
		// An access token where only refresh tokens go.
		offer{"simplejwt access token as refresh", g.sjAccess, []int{ocmRefresh, ocmRefreshBasic}},
		offer{"ocm access token as refresh", g.ocmAccess, []int{sjRefresh, sjBlacklist, ocmRefresh, ocmRefreshBasic}},
		offer{"atoti token as refresh", g.atoti, []int{sjRefresh, sjBlacklist, ocmRefresh, ocmRefreshBasic}},
		offer{"oauth access token as refresh", g.oauthAccess, []int{sjRefresh, sjBlacklist, ocmRefresh, ocmRefreshBasic}},
		// Tokens of another dialect or of the standard endpoints.
		offer{"oauth refresh token", g.oauthRefresh, []int{sjVerify, sjRefresh, sjBlacklist, ocmRefresh, ocmRefreshBasic}},
		offer{"ocm refresh token at simplejwt", g.ocmRef, []int{sjVerify, sjRefresh, sjBlacklist}},
		offer{"simplejwt refresh token at ocm", g.sjRefresh, []int{ocmRefresh, ocmRefreshBasic}},
		offer{"ocm access token at simplejwt verify", g.ocmAccess, []int{sjVerify}},
		offer{"atoti token at simplejwt verify", g.atoti, []int{sjVerify}},
		offer{"client_credentials token at simplejwt verify", g.ccAccess, []int{sjVerify}},
		// Tokens of another install, genuine there.
		offer{"another install's atoti token", og.atoti, all},
		offer{"another install's simplejwt access token", og.sjAccess, all},
		offer{"another install's simplejwt refresh token", og.sjRefresh, all},
		offer{"another install's ocm access token", og.ocmAccess, all},
		offer{"another install's ocm refresh token", og.ocmRef, all},
		offer{"another install's oauth refresh token", og.oauthRefresh, all},
		offer{"another install's client_credentials token", og.ccAccess, all},
		// Not tokens at all.
		offer{"empty JWT parts", "..", all},
		offer{"refresh prefix only", "rt1_", all},
		offer{"refresh prefix and garbage", "rt1_" + strings.Repeat("A", 300), all},
	)
	for _, of := range offers {
		t.Run(of.name, func(t *testing.T) {
			for _, i := range of.at {
				p := tokenPlaces[i]
				r := p.offer(e, of.tok)
				t.Run(p.name, func(t *testing.T) { p.refused.check(t, r) })
			}
		})
	}

	// simplejwt's own access token where its refresh token belongs: stock
	// simplejwt's "Token has wrong type".
	t.Run("simplejwt access token as refresh at simplejwt", func(t *testing.T) {
		sjWrongType.check(t, e.sjRefresh(g.sjAccess, ""))
		sjWrongType.check(t, e.sjBlacklist(g.sjAccess, ""))
	})

	// Nothing above did harm: every genuine token still works.
	t.Run("genuine tokens still work", func(t *testing.T) {
		for _, scheme := range []string{"Bearer", "Jwt"} {
			for _, tok := range []string{g.atoti, g.sjAccess} {
				if m := wantOK(t, e.atotiBearer(scheme, tok, ""), "token"); str(m, "token") != tok {
					t.Fatalf("atoti echoed another token")
				}
			}
		}
		for _, tok := range []string{g.sjAccess, g.sjRefresh} {
			if r := e.sjVerify(tok, ""); r.Status != 200 {
				t.Fatalf("simplejwt verify: %d %s", r.Status, r.Body)
			}
		}
		wantOK(t, e.sjRefresh(g.sjRefresh, ""), "access")
		if m := wantOK(t, e.ocmRefresh(g.ocmRef, "", ""), "accessToken"); str(m, "refreshToken") != g.ocmRef {
			t.Fatalf("ocm refresh token changed: %v", m)
		}
		wantOK(t, e.ocmRefresh(g.ocmRef, basic(aliceName, alicePassword), ""), "accessToken")
		for _, tok := range []string{g.ccAccess, g.sjAccess, g.ocmAccess, g.oauthAccess, g.atoti} {
			if m := e.introspect(tok); m["active"] != true {
				t.Fatalf("a genuine token is inactive: %v", m)
			}
		}
		wantOK(t, e.oauth("", "grant_type", "refresh_token", "refresh_token", g.oauthRefresh), "access_token")
		wantOK(t, e.sjBlacklist(g.sjRefresh, ""))
	})
	if n := f.Fetched.Load(); n != 0 {
		t.Fatalf("tokend fetched a URL from a token header %d times", n)
	}
}
