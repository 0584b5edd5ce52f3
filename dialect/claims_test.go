package dialect_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tokend/tokend/grant"
)

// payload decodes a JWT's claims without verifying it (the dialects' own
// tests verify them).
func payload(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40s", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCustomClaimsInEveryDialect: a user's custom claims appear in the
// access tokens of every dialect that issues the user one, and never
// replace a claim tokend sets.
func TestCustomClaimsInEveryDialect(t *testing.T) {
	e := newEnv(t, grant.Limits{}, "127.0.0.1/32")
	claims := map[string]any{"dept": "ops", "tier": float64(3)}
	if _, err := e.Engine.Manager().UpdateUser(t.Context(), e.aliceID, grant.UserPatch{Claims: &claims}, nil); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{
		"oauth":     str(wantOK(t, e.oauthPassword(aliceName, alicePassword, ""), "access_token"), "access_token"),
		"atoti":     str(wantOK(t, e.atotiBasic(aliceName, alicePassword, ""), "token"), "token"),
		"simplejwt": str(wantOK(t, e.sjObtain(aliceName, alicePassword, ""), "access"), "access"),
		"ocm":       str(wantOK(t, e.ocmLogin(aliceName, alicePassword, ""), "accessToken"), "accessToken"),
	}
	for name, raw := range tokens {
		m := payload(t, raw)
		if m["dept"] != "ops" || m["tier"] != float64(3) {
			t.Errorf("%s token lacks the custom claims: %v", name, m)
		}
		if m["iss"] == nil || m["exp"] == nil {
			t.Errorf("%s token lost its own claims: %v", name, m)
		}
	}
}
