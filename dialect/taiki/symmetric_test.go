package taiki_test

import (
	"encoding/base64"
	"net/url"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokend/tokend/dialect/taiki"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/tokendtest"
)

// TestHS256 checks --taiki-alg HS256: the token is signed as the seed's
// example token is (HS256, typ JWT) with the Taiki key, verifies with it
// and not with the JWKS, is active at introspection, and is no bearer
// token anywhere else (/userinfo).
func TestHS256(t *testing.T) {
	const secret = "taiki-shared-secret-0123456789abcdef-xyz"
	k, err := keys.NewSymmetric("taiki", "HS256", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, taiki.Config{Alg: "HS256", TTL: taiki.DefaultConfig.TTL}, func(o *tokendtest.Options) {
		o.Config = func(c *grant.Config) { c.SymmetricKeys = []*keys.Symmetric{k} }
	})
	r := e.post(taiki.Path, body("api_key", e.prodID, "api_secret", e.prodSecret))
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	tok := r.Str(t, "access_token")
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	if h := parsed.Headers[0]; h.Algorithm != "HS256" || h.ExtraHeaders["typ"] != "JWT" || h.KeyID != k.ID {
		t.Fatalf("header %+v", h)
	}
	var claims map[string]any
	if err := parsed.Claims([]byte(secret), &claims); err != nil {
		t.Fatalf("does not verify with the Taiki key: %v", err)
	}
	if claims["token_type"] != "access" || claims["client_app_id"] != e.prodID || claims["taiki_user_id"] != r.Str(t, "taiki_user_id") {
		t.Fatalf("claims %v", claims)
	}
	cid, csec := e.AddClient(false, "", nil, "client_credentials")
	req := url.Values{"token": {tok}}.Encode()
	if m := e.Do("POST", "/oauth2/introspect", "application/x-www-form-urlencoded", req, "Authorization", basicAuth(cid, csec)).JSON(t); m["active"] != true {
		t.Fatalf("introspection: %v", m)
	}
	if r := e.Do("GET", "/userinfo", "", "", "Authorization", "Bearer "+tok); r.Status != 401 {
		t.Fatalf("/userinfo took a Taiki HS256 token: %d %s", r.Status, r.Body)
	}
}

// TestClaimNames checks --taiki-user-id-claim and --taiki-token-type-claim.
func TestClaimNames(t *testing.T) {
	e := newEnv(t, taiki.Config{TTL: taiki.DefaultConfig.TTL, UserIDClaim: "uid", TokenTypeClaim: "kind"})
	r := e.post(taiki.Path, body("api_key", e.prodID, "api_secret", e.prodSecret))
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	c, _ := e.VerifyWithJWKS(r.Str(t, "access_token"))
	if c["uid"] != r.Str(t, "taiki_user_id") || c["kind"] != "access" || c["taiki_user_id"] != nil || c["token_type"] != nil {
		t.Fatalf("claims %v", c)
	}
	if (taiki.Config{UserIDClaim: "client_app_id"}).Validate() == nil {
		t.Fatal("a claim name tokend writes itself was accepted")
	}
}

func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}
