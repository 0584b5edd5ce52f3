package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend/keys"
)

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		r := e.do("GET", path, "", "", "")
		m := r.JSON(t)
		want := map[string]string{
			"issuer":                 "http://tokend.test",
			"token_endpoint":         "http://tokend.test/oauth2/token",
			"jwks_uri":               "http://tokend.test/.well-known/jwks.json",
			"revocation_endpoint":    "http://tokend.test/oauth2/revoke",
			"introspection_endpoint": "http://tokend.test/oauth2/introspect",
			"userinfo_endpoint":      "http://tokend.test/userinfo",
		}
		for k, v := range want {
			if m[k] != v {
				t.Fatalf("%s: %s = %v, want %s", path, k, m[k], v)
			}
		}
		if g, _ := m["grant_types_supported"].([]any); len(g) != 3 {
			t.Fatalf("grant_types_supported %v", m["grant_types_supported"])
		}
	}
}

func jwksKids(t *testing.T, e *env) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(e.do("GET", "/.well-known/jwks.json", "", "", "").Body, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Use != "sig" || k.Algorithm == "" {
			t.Fatalf("JWKS key %s: public=%v use=%q alg=%q", k.KeyID, k.IsPublic(), k.Use, k.Algorithm)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

func TestJWKS(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/.well-known/jwks.json", "", "", "")
	if r.Status != 200 || r.Header.Get("ETag") == "" || !strings.Contains(r.Header.Get("Cache-Control"), "max-age=60") {
		t.Fatalf("%d %v", r.Status, r.Header)
	}
	if strings.Contains(string(r.Body), `"d"`) {
		t.Fatal("the JWKS must not contain private key material")
	}
	if kids := jwksKids(t, e); len(kids) != 1 {
		t.Fatalf("kids %v", kids)
	}
	again := e.do("GET", "/.well-known/jwks.json", "", "", "", "If-None-Match", r.Header.Get("ETag"))
	if again.Status != 304 || len(again.Body) != 0 {
		t.Fatalf("revalidation: %d", again.Status)
	}
}

// rotate adds a key as `tokend key rotate` does and makes the engine see it.
func (e *env) rotate(alg string, prepublish time.Duration) string {
	e.t.Helper()
	ctx := context.Background()
	now := e.Clock.Now()
	k, err := keys.Generate(alg, now, now.Add(prepublish))
	if err != nil {
		e.t.Fatal(err)
	}
	stored, err := e.Store.ListKeys(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	latest := ""
	for _, s := range stored {
		if s.Alg == alg {
			latest = s.ID
		}
	}
	if err := e.Store.AddKey(ctx, k, latest); err != nil {
		e.t.Fatal(err)
	}
	if err := e.Engine.Sync(ctx); err != nil {
		e.t.Fatal(err)
	}
	return k.ID
}

func (e *env) ccToken() string {
	e.t.Helper()
	r := e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.basic())
	if r.Status != 200 {
		e.t.Fatalf("%d %s", r.Status, r.Body)
	}
	return r.Str(e.t, "access_token")
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	oldTok := e.ccToken()
	_, h := e.verifyWithJWKS(oldTok)
	oldKid := h.KeyID

	t.Run("prepublished key is announced before it signs", func(t *testing.T) {
		newKid := e.rotate("ES256", time.Hour)
		if kids := jwksKids(t, e); len(kids) != 2 || !contains(kids, newKid) {
			t.Fatalf("announced key missing from JWKS: %v", kids)
		}
		if _, h := e.verifyWithJWKS(e.ccToken()); h.KeyID != oldKid {
			t.Fatal("an announced key must not sign yet")
		}
		e.Clock.Advance(time.Hour + time.Second)
		tok := e.ccToken()
		if _, h := e.verifyWithJWKS(tok); h.KeyID != newKid {
			t.Fatalf("after pre-publication the new key signs: got %s", h.KeyID)
		}
	})
	t.Run("retired key verifies until its tokens expire", func(t *testing.T) {
		e := newEnv(t)
		tok := e.ccToken()
		_, h := e.verifyWithJWKS(tok)
		newKid := e.rotate("ES256", 0)
		if _, h2 := e.verifyWithJWKS(e.ccToken()); h2.KeyID != newKid {
			t.Fatal("key rotate without pre-publication signs at once")
		}
		if kids := jwksKids(t, e); !contains(kids, h.KeyID) {
			t.Fatal("the retired key must stay published")
		}
		if e.introspect(tok)["active"] != true {
			t.Fatal("a token of the retired key must still introspect active")
		}
		e.Clock.Advance(16 * time.Minute)
		if kids := jwksKids(t, e); contains(kids, h.KeyID) || len(kids) != 1 {
			t.Fatalf("the retired key outlived its tokens: %v", kids)
		}
	})
	t.Run("revoked key leaves at once", func(t *testing.T) {
		e := newEnv(t)
		tok := e.ccToken()
		_, h := e.verifyWithJWKS(tok)
		e.rotate("ES256", 0)
		if err := e.Store.RevokeKey(t.Context(), h.KeyID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := e.Engine.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		if contains(jwksKids(t, e), h.KeyID) || e.introspect(tok)["active"] != false {
			t.Fatal("a revoked key must neither be published nor verify")
		}
	})
	t.Run("other algorithms", func(t *testing.T) {
		e := newEnv(t)
		for _, alg := range []string{"EdDSA", "RS256", "RS512"} {
			kid := e.rotate(alg, 0)
			if !contains(jwksKids(t, e), kid) {
				t.Fatalf("%s key not published", alg)
			}
		}
	})
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t)
	if r := e.do("GET", "/healthz", "", "", ""); r.Status != 200 {
		t.Fatalf("healthz %d", r.Status)
	}
	if r := e.do("GET", "/readyz", "", "", ""); r.Status != 200 {
		t.Fatalf("readyz %d", r.Status)
	}
	at := e.ccToken()
	login := e.login()
	e.refresh(login.Str(t, "refresh_token"))
	e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.clientID+":wrong")
	body := string(e.do("GET", "/metrics", "", "", "").Body)
	for _, want := range []string{
		`tokend_tokens_issued_total{dialect="oauth",grant="client_credentials"} 1`,
		`tokend_tokens_issued_total{dialect="oauth",grant="password"} 1`,
		`tokend_tokens_issued_total{dialect="oauth",grant="refresh_token"} 1`,
		`tokend_failures_total{dialect="oauth",reason="invalid_client"} 1`,
		`tokend_http_request_duration_seconds_bucket{code="200",route="POST /oauth2/token"`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	for _, secret := range []string{at, e.clientSecret, alicePassword, login.Str(t, "refresh_token")} {
		if strings.Contains(body, secret) {
			t.Fatal("metrics carry a secret")
		}
	}
	if r := e.do("POST", "/metrics", "", "", ""); r.Status != 405 {
		t.Fatalf("POST /metrics: %d", r.Status)
	}
}

func TestReadyzWithStoreDown(t *testing.T) {
	e := newEnv(t)
	e.Store.Close()
	r := e.do("GET", "/readyz", "", "", "")
	if r.Status != 503 {
		t.Fatalf("readyz with a closed store: %d", r.Status)
	}
	// A request that needs the store fails cleanly, never with a dropped connection.
	r = e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword, "client_id", e.publicID), "")
	if r.Status < 500 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	r.JSON(t)
}

// TestLogsCarryNoSecrets runs every flow, failures included, and scans
// what the server logged for passwords, secrets and tokens.
func TestLogsCarryNoSecrets(t *testing.T) {
	e := newEnv(t)
	login := e.login()
	at, rt := login.Str(t, "access_token"), login.Str(t, "refresh_token")
	rt2 := e.refresh(rt).Str(t, "refresh_token")
	e.Clock.Advance(11 * time.Second)
	e.refresh(rt) // reuse after grace: logged as theft
	cc := e.ccToken()
	e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", "wrong-"+alicePassword, "client_id", e.publicID), "")
	e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.clientID+":"+e.clientSecret+"x")
	e.post("/oauth2/introspect", vals("token", at), e.basic())
	e.post("/oauth2/revoke", vals("token", cc), e.basic())
	e.do("GET", "/userinfo", "", "", "", "Authorization", "Bearer "+at)
	e.Store.Close()
	e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword, "client_id", e.publicID), "")

	logs := e.Logs()
	if !strings.Contains(logs, "refresh token reuse") {
		t.Fatalf("expected the reuse to be logged; logs:\n%s", logs)
	}
	for name, s := range map[string]string{
		"password": alicePassword, "client secret": e.clientSecret, "access token": at,
		"refresh token": rt, "rotated refresh token": rt2, "client token": cc,
		"token signature": at[strings.LastIndex(at, ".")+1:],
	} {
		if strings.Contains(logs, s) {
			t.Errorf("the logs carry a %s", name)
		}
	}
}
