package dialect_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/atoti"
	"github.com/tokend/tokend/dialect/ocm"
	"github.com/tokend/tokend/dialect/simplejwt"
	"github.com/tokend/tokend/dialect/taiki"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/tokendtest"
)

// The symmetric keys of the tests: text, as a Django SIGNING_KEY is.
const (
	sjKey    = "simplejwt-signing-key-of-the-django-services-0123456789"
	taikiKey = "taiki-signing-key-held-by-the-taiki-app-abcdefghijklmno"
)

// newHSEnv is newEnv with simplejwt and taiki signing HS256 with their
// own keys, as `tokend serve --simplejwt-alg HS256 --taiki-alg HS256`
// runs them.
func newHSEnv(t *testing.T) *env {
	t.Helper()
	sk, err := keys.NewSymmetric(simplejwtName, "HS256", []byte(sjKey))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := keys.NewSymmetric(taikiName, "HS256", []byte(taikiKey))
	if err != nil {
		t.Fatal(err)
	}
	sjCfg, taikiCfg := simplejwt.DefaultConfig, taiki.DefaultConfig
	sjCfg.Alg, taikiCfg.Alg = "HS256", "HS256"
	o := tokendtest.Options{
		Config: func(c *grant.Config) {
			c.ExtraAlgs = []string{"RS512"}
			c.MaxTokenTTL = 30 * 24 * time.Hour
			c.SymmetricKeys = []*keys.Symmetric{sk, tk}
		},
		Routes: func(e *tokendtest.Env) []httpapi.Routes {
			return []httpapi.Routes{
				atoti.New(e.Engine, atoti.DefaultConfig),
				simplejwt.New(e.Engine, sjCfg),
				ocm.New(e.Engine, ocm.DefaultConfig),
				taiki.New(e.Engine, taikiCfg),
			}
		},
	}
	e := &env{Env: tokendtest.New(t, o), t: t}
	e.aliceID = e.AddUser(aliceName, alicePassword, "ROLE_USER")
	e.clientID, e.clientSecret = e.AddClient(false, "", nil, tokend.GrantClientCredentials, tokend.GrantPassword, tokend.GrantRefreshToken)
	return e
}

const (
	simplejwtName = "simplejwt"
	taikiName     = "taiki"
)

// verifyHS checks a token as the dialect's own verifiers do: PyJWT-style,
// with the shared key and HS256 only.
func verifyHS(t *testing.T, tok, key string) (map[string]any, jose.Header) {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatalf("parse %s token: %v", key[:5], err)
	}
	var claims map[string]any
	if err := parsed.Claims([]byte(key), &claims); err != nil {
		t.Fatalf("token does not verify with its dialect's key: %v", err)
	}
	return claims, parsed.Headers[0]
}

// TestSymmetricKeysConfined checks that tokens signed with a dialect's
// symmetric key verify with that key (as the dialect's own verifiers hold
// it), are accepted back only at that dialect's endpoints and by
// introspection and revocation, and are refused everywhere else, before
// any key is tried: /userinfo, atoti's bearer echo, ocm, the other
// dialect, the OAuth refresh grant. The keys appear in no response, log
// or metric.
func TestSymmetricKeysConfined(t *testing.T) {
	e := newHSEnv(t)
	m := wantOK(t, e.sjObtain(aliceName, alicePassword, ""), "refresh", "access")
	sjAccess, sjRefresh := str(m, "access"), str(m, "refresh")
	tm := wantOK(t, e.taikiToken(e.clientID, e.clientSecret, ""), "access_token", "taiki_user_id")
	taikiTok := str(tm, "access_token")

	// Each verifies with its own dialect's key, and names HS256 and a kid.
	for _, c := range []struct{ tok, key string }{{sjAccess, sjKey}, {sjRefresh, sjKey}, {taikiTok, taikiKey}} {
		_, h := verifyHS(t, c.tok, c.key)
		if h.Algorithm != "HS256" || h.KeyID == "" {
			t.Fatalf("header %+v", h)
		}
	}
	if _, err := jwt.ParseSigned(sjAccess, []jose.SignatureAlgorithm{jose.HS256}); err != nil {
		t.Fatal(err)
	}
	if tok, _ := jwt.ParseSigned(taikiTok, []jose.SignatureAlgorithm{jose.HS256}); tok.Claims([]byte(sjKey), &map[string]any{}) == nil {
		t.Fatal("a taiki token verifies with the simplejwt key")
	}

	// The owning dialect takes its tokens back.
	wantOK(t, e.sjVerify(sjAccess, ""))
	wantOK(t, e.sjVerify(sjRefresh, ""))
	wantOK(t, e.sjRefresh(sjRefresh, ""), "access")
	sjWrongType.check(t, e.sjRefresh(sjAccess, ""))

	// Introspection knows every dialect's key.
	for _, tok := range []string{sjAccess, sjRefresh, taikiTok} {
		if in := e.introspect(tok); in["active"] != true {
			t.Fatalf("introspection of an HS256 token: %v", in)
		}
	}

	// Everywhere else they are refused.
	for _, tok := range []string{sjAccess, taikiTok} {
		atoti401.check(t, e.atotiBearer("Bearer", tok, ""))
		if r := e.Do("GET", "/userinfo", "", "", "Authorization", "Bearer "+tok); r.Status != 401 {
			t.Fatalf("/userinfo took an HS256 token: %d %s", r.Status, r.Body)
		}
	}
	sjBadToken.check(t, e.sjVerify(taikiTok, ""))
	ocmBadRefresh.check(t, e.ocmRefresh(sjRefresh, "", ""))
	if r := e.oauth("", "grant_type", "refresh_token", "refresh_token", sjRefresh); r.Status != 400 || !strings.Contains(string(r.Body), "invalid_grant") {
		t.Fatalf("the OAuth refresh grant took a simplejwt refresh JWT: %d %s", r.Status, r.Body)
	}

	// A token of one dialect re-signed with the other's key (same claims,
	// the other's kid) passes neither: the key is bound to its kid, and
	// its dialect's checks refuse the other's claims.
	h, c := tokendtest.Decode(sjAccess)
	th, _ := tokendtest.Decode(taikiTok)
	h["kid"] = th["kid"]
	resigned := tokendtest.Sign(h, c, []byte(taikiKey))
	sjBadToken.check(t, e.sjVerify(resigned, ""))
	// An HS256 token keyed with the simplejwt key but no kid of it.
	h["kid"] = "no-such-key"
	sjBadToken.check(t, e.sjVerify(tokendtest.Sign(h, c, []byte(sjKey)), ""))
	if in := e.introspect(tokendtest.Sign(h, c, []byte(sjKey))); in["active"] != false {
		t.Fatalf("introspection took a token whose kid names no key: %v", in)
	}

	// Revocation takes them too (it only ever takes power away).
	for _, tok := range []string{taikiTok, sjRefresh} {
		if r := e.send("POST", "/oauth2/revoke", formType, url.Values{"token": {tok}}.Encode(), basic(e.clientID, e.clientSecret), ""); r.Status != 200 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		if in := e.introspect(tok); in["active"] != false {
			t.Fatalf("a revoked HS256 token is active: %v", in)
		}
	}
	sjBlacklisted.check(t, e.sjVerify(sjAccess, ""))

	// The keys are nowhere to be seen.
	jwks := e.Do("GET", "/.well-known/jwks.json", "", "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks.Body, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if _, ok := k.Key.([]byte); ok || strings.HasPrefix(k.Algorithm, "HS") {
			t.Fatalf("a symmetric key in the JWKS: %s", k.KeyID)
		}
	}
	disc := e.Do("GET", "/.well-known/openid-configuration", "", "")
	var doc map[string]any
	if err := json.Unmarshal(disc.Body, &doc); err != nil {
		t.Fatal(err)
	}
	signing, _ := doc["tokend_symmetric_signing"].(map[string]any)
	for _, d := range []string{simplejwtName, taikiName} {
		entry, _ := signing[d].(map[string]any)
		if entry["alg"] != "HS256" || entry["published_in_jwks"] != false {
			t.Fatalf("discovery does not say how %s signs: %s", d, disc.Body)
		}
	}
	metrics := e.Do("GET", "/metrics", "", "")
	for _, secret := range []string{sjKey, taikiKey} {
		for where, text := range map[string]string{
			"JWKS": string(jwks.Body), "discovery": string(disc.Body), "metrics": string(metrics.Body), "logs": e.Logs(),
		} {
			if strings.Contains(text, secret) || strings.Contains(text, secret[:16]) {
				t.Fatalf("a symmetric key is in the %s", where)
			}
		}
	}
}

// sjBlacklisted is simplejwt's answer to a revoked token.
var sjBlacklisted = fixed(401, `{"detail":"Token is blacklisted","code":"token_not_valid"}`, sjChallenge)
