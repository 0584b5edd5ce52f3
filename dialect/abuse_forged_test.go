package dialect_test

import (
	"strings"
	"testing"

	"github.com/tokend/tokend/dialect/atoti"
	"github.com/tokend/tokend/grant"
)

func (e *env) atotiBearer(scheme, tok, ip string) response {
	e.t.Helper()
	return e.send("GET", atoti.Path, "", "", scheme+" "+tok, ip)
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
