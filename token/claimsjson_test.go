package token

import (
	"bytes"
	"encoding/json"
	"testing"
)

// strangeStrings are strings whose JSON encoding has every special case:
// HTML characters, control characters (with and without short escapes),
// quotes and backslashes, invalid UTF-8, U+2028 and U+2029, multi-byte text.
var strangeStrings = []string{
	"", "plain", `<script>&"'\`, "\b\f\n\r\t\x00\x01\x1f\x7f", "\xff\xfe", "a\xc3", "\u2028\u2029", "名前é", "\U0001F600", "x\u2027\u202a",
}

func claimsWith(s string) []*Claims {
	ctr := int64(-3)
	return []*Claims{
		{},
		{Issuer: s, Subject: s, Audience: []string{s}, ExpiresAt: 1, IssuedAt: -2, ID: s},
		{Audience: []string{s, s + "x"}, NotBefore: 9, ID: s, ClientID: s, Scope: s, SessionID: s, Username: s,
			Roles: []string{s, "r"}, Authorities: []string{}, TokenType: s, UserID: NumericID(s), ClientAppID: s, TaikiUserID: s, Mode: s, Counter: &ctr},
		{Audience: []string{}, Roles: []string{}, Authorities: []string{s}},
		// A numeric user id, and custom claims (one named like a claim
		// tokend sets, which must not be written).
		{ID: s, UserID: "42", Extra: map[string]any{s + "k": s, "z": []any{s, 1.5, true}, "sub": "evil", "a": map[string]any{"n": nil}}},
		{UserID: "-9007199254740993", Extra: map[string]any{"iss": "evil"}},
		{UserID: "007"},
	}
}

func checkClaimsJSON(t *testing.T, c *Claims) {
	t.Helper()
	want, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := appendClaims(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("appendClaims(%+v)\n got %s\nwant %s", c, got, want)
	}
}

// TestClaimsJSONMatchesMarshal: the claims tokend signs are the bytes
// json.Marshal writes, whatever the fields hold.
func TestClaimsJSONMatchesMarshal(t *testing.T) {
	for _, s := range strangeStrings {
		for _, c := range claimsWith(s) {
			checkClaimsJSON(t, c)
		}
	}
}

func FuzzClaimsJSON(f *testing.F) {
	for _, s := range strangeStrings {
		f.Add(s, s, int64(0))
	}
	f.Fuzz(func(t *testing.T, a, b string, n int64) {
		for _, c := range claimsWith(a) {
			c.Subject, c.ExpiresAt = b, n
			if len(c.Audience) > 0 {
				c.Audience[0] = b
			}
			checkClaimsJSON(t, c)
		}
	})
}
