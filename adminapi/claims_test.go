package adminapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// TestCustomClaims: a user's claims reach its OAuth access tokens and
// /userinfo, and can never replace a claim tokend sets, even when the
// store holds one (written before the rule, or behind the API's back).
func TestCustomClaims(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		id := e.createUser(`{"username": "alice", "password": "pw", "roles": ["ops"], "claims": {"dept": "ops", "level": 12345678901234567890, "tags": ["a", "b"], "org": {"id": 7}}}`)
		login := e.login("alice", "pw", "")
		claims := payload(t, login.str("access_token"))
		if claims["dept"] != "ops" || !jsonEqual(claims["tags"], []any{"a", "b"}) || !jsonEqual(claims["org"], map[string]any{"id": 7}) {
			t.Errorf("token claims %v", claims)
		}
		if n, ok := claims["level"].(json.Number); !ok || n.String() != "12345678901234567890" {
			t.Errorf("level %v (%T): a big number must keep every digit", claims["level"], claims["level"])
		}
		info := e.userinfo(login.str("access_token")).json()
		if info["dept"] != "ops" || info["sub"] != id || info["preferred_username"] != "alice" {
			t.Errorf("userinfo %v", info)
		}

		// Behind the API's back, claims named like tokend's own.
		u, err := e.store.UserByID(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		u.Claims = map[string]any{"sub": "mallory", "iss": "http://evil", "scope": "tokend.admin", "roles": []any{"tokend.admin"},
			"client_id": "x", "preferred_username": "root", "exp": 99999999999, "dept": "sales"}
		if err := e.store.UpdateUser(t.Context(), u, u.Version, time.Now()); err != nil {
			t.Fatal(err)
		}
		e.engine.Sync(t.Context())
		login = e.login("alice", "pw", "")
		claims = payload(t, login.str("access_token"))
		if claims["sub"] != id || claims["iss"] != issuer || claims["scope"] != "profile" || !jsonEqual(claims["roles"], []any{"ops"}) ||
			claims["client_id"] != e.web || claims["preferred_username"] != "alice" || claims["dept"] != "sales" {
			t.Errorf("claims %v", claims)
		}
		if exp, _ := claims["exp"].(json.Number).Int64(); exp > time.Now().Add(time.Hour).Unix() {
			t.Errorf("exp %d was overridden", exp)
		}
		info = e.userinfo(login.str("access_token")).json()
		if info["sub"] != id || info["preferred_username"] != "alice" || info["dept"] != "sales" || info["iss"] != nil || info["scope"] != nil {
			t.Errorf("userinfo %v", info)
		}

		// The largest user the API accepts still gets tokens that tokend
		// itself accepts (RS512: the longest signature).
		e = newEnv(t, open(t), func(c *grant.Config) { c.Alg = "RS512" })
		big := map[string]any{}
		for i := range 60 {
			big["k"+strings.Repeat("x", 20)+string(rune('A'+i))] = strings.Repeat("v", 40)
		}
		bigJSON, _ := json.Marshal(big)
		if len(bigJSON) > grant.MaxClaimsBytes || len(bigJSON) < grant.MaxClaimsBytes-100 {
			t.Fatalf("claims of %d bytes", len(bigJSON))
		}
		long := func(n, size int) []string {
			l := make([]string, n)
			for i := range l {
				l[i] = fmt.Sprintf("%s%02d", strings.Repeat(string(rune('a'+i%26)), size-2), i)
			}
			return l
		}
		rolesJSON, _ := json.Marshal(long(grant.MaxRoles, grant.MaxRoleLen))
		scopesJSON, _ := json.Marshal(long(grant.MaxScopes, grant.MaxScopeLen))
		name := strings.Repeat("n", grant.MaxNameLen)
		e.createUser(`{"username": "` + name + `", "password": "pw", "roles": ` + string(rolesJSON) + `, "claims": ` + string(bigJSON) + `}`)
		wide := e.must(201, "POST", "/admin/v1/clients", `{"name": "wide", "public": true, "scopes": `+string(scopesJSON)+`}`).str("id")
		r := e.form("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {name}, "password": {"pw"}, "client_id": {wide}}, "", "")
		tok := r.str("access_token")
		if r.status != 200 || !strings.HasPrefix(string(mustHeader(t, tok)), `{"alg":"RS512"`) {
			t.Fatalf("login: %d %.300s", r.status, r.body)
		}
		t.Logf("the largest token is %d bytes", len(tok))
		if !e.active(tok) {
			t.Fatalf("a token of %d bytes for the largest user is refused", len(tok))
		}
		if r := e.userinfo(tok); r.status != 200 {
			t.Errorf("userinfo with the largest token: %d", r.status)
		}
	})
}

// payload decodes a JWT's claims (signature checks are other tests').
func payload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustHeader(t *testing.T, jwt string) []byte {
	t.Helper()
	h, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	return b
}
