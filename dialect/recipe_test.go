package dialect_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/tokendtest"
)

// The README's "Verify tokens offline" recipe, step by step, with go-jose
// and the public JWKS only (no code of tokend's): what a resource server
// does. Keep it in step with the README text.

// recipeAlgs are "the algorithms you expect" of this deployment: ES256 (the
// default) and RS512 (Atoti's).
var recipeAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.RS512}

// recipeVerify applies the README recipe to raw with the JWKS set at now,
// for issuer iss and access audience aud, step by step as the README
// numbers them. It returns nil for a token the recipe accepts, and says
// which step refused it otherwise.
func recipeVerify(set jose.JSONWebKeySet, raw, iss, aud string, now time.Time) error {
	// Reading the header: go-jose takes the algorithm list of step 2 here
	// and refuses any other alg before anything else is looked at.
	tok, err := jwt.ParseSigned(raw, recipeAlgs)
	if err != nil {
		return fmt.Errorf("step 2, alg (or no JWS at all): %w", err)
	}
	h := tok.Headers[0]
	// 1. kid: the header names a key of the JWKS.
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		return fmt.Errorf("step 1, kid %q is not in the JWKS", h.KeyID)
	}
	// 2. alg: one of the expected ones (above); the signature checks out
	// with the key of step 1.
	var c jwt.Claims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		return fmt.Errorf("step 2, signature: %w", err)
	}
	// 3. typ header: at+jwt (standard endpoints) or JWT (dialects).
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" && typ != "JWT" {
		return fmt.Errorf("step 3, typ %q", typ)
	}
	// 4. iss, 5. aud contains the access audience, 6. exp in the future.
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: iss, AnyAudience: jwt.Audience{aud}, Time: now}, 0); err != nil {
		return fmt.Errorf("steps 4-6: %w", err)
	}
	// 6. exp present (go-jose checks it only when it is there).
	if c.Expiry == nil {
		return errors.New("step 6, no exp")
	}
	return nil
}

// jwks fetches the env's JWKS as a resource server would.
func (e *env) jwks() jose.JSONWebKeySet {
	e.t.Helper()
	r := e.Do("GET", "/.well-known/jwks.json", "", "")
	var set jose.JSONWebKeySet
	if r.Status != 200 || json.Unmarshal(r.Body, &set) != nil {
		e.t.Fatalf("JWKS: %d %s", r.Status, r.Body)
	}
	return set
}

// TestReadmeRecipeTellsAccessFromRefresh runs the README's offline check on
// every kind of token tokend issues: every access token passes, and every
// other token (refresh tokens, opaque or JWT, live or blacklisted) fails.
func TestReadmeRecipeTellsAccessFromRefresh(t *testing.T) {
	e := newEnv(t, grant.Limits{})
	// Each token, and for the others the step of the recipe that must
	// refuse it: opaque tokens are no JWS at all, refresh JWTs have the
	// refresh audience.
	type kind struct{ name, tok, refusedBy string }
	var access, other []kind
	add := func(list *[]kind, name, tok string) {
		t.Helper()
		if tok == "" {
			t.Fatalf("%s: no token", name)
		}
		refusedBy := "step 2, alg (or no JWS at all)"
		if !strings.HasPrefix(tok, "rt1_") {
			refusedBy = "invalid audience claim (aud)"
		}
		*list = append(*list, kind{name, tok, refusedBy})
	}

	// OAuth: password (access + opaque refresh), refresh grant, client_credentials.
	pw := wantOK(t, e.oauthPassword(aliceName, alicePassword, ""), "access_token", "refresh_token")
	add(&access, "oauth password access", str(pw, "access_token"))
	add(&other, "oauth refresh (rt1_)", str(pw, "refresh_token"))
	rf := wantOK(t, e.oauth("", "grant_type", "refresh_token", "refresh_token", str(pw, "refresh_token")), "access_token", "refresh_token")
	add(&access, "oauth refreshed access", str(rf, "access_token"))
	add(&other, "oauth rotated refresh (rt1_)", str(rf, "refresh_token"))
	cc := wantOK(t, e.oauth("", "grant_type", "client_credentials"), "access_token")
	add(&access, "oauth client_credentials access", str(cc, "access_token"))

	// atoti.
	add(&access, "atoti access", str(wantOK(t, e.atotiBasic(aliceName, alicePassword, ""), "token"), "token"))

	// simplejwt: a pair, a refreshed access token, and a blacklisted refresh JWT.
	sj := wantOK(t, e.sjObtain(aliceName, alicePassword, ""), "access", "refresh")
	add(&access, "simplejwt access", str(sj, "access"))
	add(&other, "simplejwt refresh JWT", str(sj, "refresh"))
	add(&access, "simplejwt refreshed access", str(wantOK(t, e.sjRefresh(str(sj, "refresh"), ""), "access"), "access"))
	bl := wantOK(t, e.sjObtain(aliceName, alicePassword, ""), "access", "refresh")
	wantOK(t, e.sjBlacklist(str(bl, "refresh"), ""))
	add(&other, "simplejwt blacklisted refresh JWT", str(bl, "refresh"))

	// ocm: access + opaque refresh, and an access token from that refresh.
	oc := wantOK(t, e.ocmLogin(aliceName, alicePassword, ""), "accessToken", "refreshToken")
	add(&access, "ocm access", str(oc, "accessToken"))
	add(&other, "ocm refresh (rt1_)", str(oc, "refreshToken"))
	add(&access, "ocm refreshed access", str(wantOK(t, e.ocmRefresh(str(oc, "refreshToken"), "", ""), "accessToken"), "accessToken"))

	// taiki.
	add(&access, "taiki access", str(wantOK(t, e.taikiToken(e.clientID, e.clientSecret, ""), "access_token"), "access_token"))

	set := e.jwks()
	now := e.Clock.Now()
	for _, c := range access {
		if err := recipeVerify(set, c.tok, tokendtest.Issuer, tokendtest.Issuer, now); err != nil {
			t.Errorf("%s: the README recipe refuses an access token: %v", c.name, err)
		}
	}
	for _, c := range other {
		if err := recipeVerify(set, c.tok, tokendtest.Issuer, tokendtest.Issuer, now); err == nil {
			t.Errorf("%s: the README recipe accepts a token that is no access token", c.name)
		} else if !strings.Contains(err.Error(), c.refusedBy) {
			t.Errorf("%s: refused for %v, want %q", c.name, err, c.refusedBy)
		}
	}
}

// TestRefreshJWTIsNoAccessToken: the engine's own access checks refuse a
// refresh JWT (Atoti's bearer echo, /userinfo, introspection as an access
// token), and its refresh checks refuse a JWT without the refresh audience,
// even one signed with the real key, as a refresh JWT before the audience
// was set would be.
func TestRefreshJWTIsNoAccessToken(t *testing.T) {
	e := newEnv(t, grant.Limits{})
	sj := wantOK(t, e.sjObtain(aliceName, alicePassword, ""), "access", "refresh")
	rt := str(sj, "refresh")

	if _, c := tokendtest.Decode(rt); !slices.Equal(anyStrings(c["aud"]), []string{grant.RefreshAudience(tokendtest.Issuer)}) {
		t.Fatalf("refresh JWT aud %v, want [%s]", c["aud"], grant.RefreshAudience(tokendtest.Issuer))
	}
	atoti401.check(t, e.atotiBearer("Bearer", rt, ""))
	if r := e.Do("GET", "/userinfo", "", "", "Authorization", "Bearer "+rt); r.Status != 401 {
		t.Fatalf("userinfo with a refresh JWT: %d %s", r.Status, r.Body)
	}
	if m := e.introspect(rt); m["active"] != true || m["token_use"] != "refresh_token" {
		t.Fatalf("introspect refresh JWT: %v", m)
	}

	// The same refresh JWT re-signed with the access audience is refused
	// wherever a refresh token is taken.
	h, c := tokendtest.Decode(rt)
	c["aud"] = tokendtest.Issuer
	k, err := e.Engine.Ring().Signing("ES256", e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged := tokendtest.Sign(h, c, k.Private)
	sjBadToken.check(t, e.sjRefresh(forged, ""))
	sjBadToken.check(t, e.sjBlacklist(forged, ""))
	if m := e.introspect(forged); m["active"] != false {
		t.Fatalf("introspect refresh JWT with the access audience: %v", m)
	}
	// The genuine one still works, and /oauth2/revoke ends its session.
	wantOK(t, e.sjRefresh(rt, ""), "access")
	if r := e.send("POST", "/oauth2/revoke", formType, "token="+rt, basic(e.clientID, e.clientSecret), ""); r.Status != 200 {
		t.Fatalf("revoke refresh JWT: %d %s", r.Status, r.Body)
	}
	if m := e.introspect(rt); m["active"] != false {
		t.Fatalf("refresh JWT still active after revocation: %v", m)
	}
	if m := e.introspect(str(sj, "access")); m["active"] != false {
		t.Fatalf("access token of a revoked session still active: %v", m)
	}
}

// anyStrings reads a JSON aud (a string or a list of strings) as a list.
func anyStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, s := range v {
			str, _ := s.(string)
			out = append(out, str)
		}
		return out
	}
	return nil
}
