package token_test

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/token"
)

// TestReservedCoversEveryClaim: every claim the Claims struct writes is
// Reserved, so that a custom claim can never take its name.
func TestReservedCoversEveryClaim(t *testing.T) {
	typ := reflect.TypeFor[token.Claims]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name == "-" || name == "" {
			continue
		}
		if !token.Reserved(name) {
			t.Errorf("claim %q (field %s) is not Reserved", name, typ.Field(i).Name)
		}
	}
	for _, name := range []string{"nbf", "typ", "azp", "auth_time", "acr", "amr", "cnf", "act", "may_act", "username"} {
		if !token.Reserved(name) {
			t.Errorf("%q is not Reserved", name)
		}
	}
	if token.Reserved("dept") {
		t.Error(`"dept" is Reserved`)
	}
}

// TestExtraClaims: Extra claims are signed with the others and never
// replace one.
func TestExtraClaims(t *testing.T) {
	ring, k := testRing(t)
	now := time.Now()
	c := &token.Claims{
		Issuer: "iss", Subject: "alice", Audience: []string{"aud"}, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), ID: "j1",
		Roles: []string{"ops"},
		Extra: map[string]any{"dept": "ops", "level": json.Number("12345678901234567890"), "sub": "mallory", "exp": 1, "roles": []string{"root"}, "preferred_username": "root"},
	}
	raw, err := token.Sign(k, token.TypeAccess, c)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(raw, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	want := map[string]string{"sub": `"alice"`, "exp": string(mustJSON(c.ExpiresAt)), "roles": `["ops"]`, "dept": `"ops"`, "level": "12345678901234567890"}
	for k, v := range want {
		if string(m[k]) != v {
			t.Errorf("claim %s = %s, want %s", k, m[k], v)
		}
	}
	if _, has := m["preferred_username"]; has {
		t.Errorf("an Extra claim set a reserved claim that was empty: %s", payload)
	}
	if strings.Count(string(payload), `"sub"`) != 1 {
		t.Errorf("sub twice: %s", payload)
	}
	v := token.Verifier{Issuer: "iss", Audience: "aud"}
	got, _, err := v.Verify(ring, raw, token.Expectations{Algorithms: []string{"ES256"}}, now)
	if err != nil || got.Subject != "alice" {
		t.Fatalf("verify: %+v %v", got, err)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
