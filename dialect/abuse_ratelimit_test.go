package dialect_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/tokendtest"
)

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
