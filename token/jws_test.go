package token_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	jwtv5 "github.com/golang-jwt/jwt/v5"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/token"
)

// claimSets are claims like every kind of token tokend signs: a client's
// token, a user's token with roles, dialect claims, a refresh JWT with its
// counter, and strings that JSON must escape.
func claimSets(now time.Time) map[string]*token.Claims {
	ctr := int64(7)
	base := func() *token.Claims {
		return &token.Claims{
			Issuer: "http://127.0.0.1:8080", Audience: []string{"http://127.0.0.1:8080"},
			IssuedAt: now.Unix(), ExpiresAt: now.Add(15 * time.Minute).Unix(), ID: token.NewID(),
		}
	}
	client := base()
	client.Subject, client.ClientID, client.Scope = "6f1c0a9e-6c55-4a63-9a38-1b7a5d3c2e10", "6f1c0a9e-6c55-4a63-9a38-1b7a5d3c2e10", "read write"
	user := base()
	user.Subject, user.ClientID, user.SessionID, user.Username, user.Roles = "u1", "c1", "s1", "alice", []string{"ROLE_USER", "ROLE_ADMIN"}
	user.NotBefore = now.Unix()
	dialects := base()
	dialects.Audience = []string{"a", "b"}
	dialects.Authorities, dialects.TokenType, dialects.UserID = []string{}, "access", "42"
	dialects.ClientAppID, dialects.TaikiUserID, dialects.Mode = "app", "t-1", tokend.ModeSandbox
	refresh := base()
	refresh.Subject, refresh.SessionID, refresh.TokenType, refresh.Counter = "u1", "s1", "refresh", &ctr
	escapes := base()
	escapes.Subject, escapes.Username = `<script>"&'\`, "名前\u2028\u2029\x01"
	escapes.Roles = []string{"a/b", "é"}
	return map[string]*token.Claims{"client": client, "user": user, "dialects": dialects, "refresh": refresh, "escapes": escapes}
}

// TestSignMatchesGoJose checks every token tokend signs (every algorithm,
// every typ, every kind of claims): its header and claims are the bytes
// go-jose writes for the same key, typ and claims, and it verifies with
// go-jose, with golang-jwt and with token.Verify.
func TestSignMatchesGoJose(t *testing.T) {
	now := time.Now()
	for _, alg := range keys.Algorithms {
		sk, err := keys.Generate(alg, now, now)
		if err != nil {
			t.Fatal(err)
		}
		ring, err := keys.NewRing([]*tokend.SigningKey{sk}, time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ring.Signing(alg, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{token.TypeAccess, token.TypeJWT} {
			reference, err := jose.NewSigner(jose.SigningKey{
				Algorithm: jose.SignatureAlgorithm(alg),
				Key:       jose.JSONWebKey{Key: k.Private, KeyID: k.ID, Algorithm: alg},
			}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
			if err != nil {
				t.Fatal(err)
			}
			for name, c := range claimSets(now) {
				t.Run(alg+"/"+typ+"/"+name, func(t *testing.T) {
					raw, err := token.Sign(k, typ, c)
					if err != nil {
						t.Fatal(err)
					}
					payload, err := json.Marshal(c)
					if err != nil {
						t.Fatal(err)
					}
					jws, err := reference.Sign(payload)
					if err != nil {
						t.Fatal(err)
					}
					want, err := jws.CompactSerialize()
					if err != nil {
						t.Fatal(err)
					}
					got, wantParts := strings.Split(raw, "."), strings.Split(want, ".")
					if len(got) != 3 {
						t.Fatalf("not a compact JWS: %q", raw)
					}
					if got[0] != wantParts[0] {
						t.Errorf("header %q, go-jose writes %q", got[0], wantParts[0])
					}
					if got[1] != wantParts[1] {
						t.Errorf("claims %q, go-jose writes %q", got[1], wantParts[1])
					}
					if len(got[2]) != len(wantParts[2]) {
						t.Errorf("signature of %d characters, go-jose's has %d", len(got[2]), len(wantParts[2]))
					}

					// go-jose, with only this algorithm allowed.
					parsed, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
					if err != nil {
						t.Fatalf("go-jose cannot parse it: %v", err)
					}
					h := parsed.Signatures[0].Header
					if h.Algorithm != alg || h.KeyID != k.ID || h.ExtraHeaders[jose.HeaderType] != typ {
						t.Errorf("go-jose reads header %+v", h)
					}
					verified, err := parsed.Verify(k.Public)
					if err != nil {
						t.Fatalf("go-jose: signature does not verify: %v", err)
					}
					if string(verified) != string(payload) {
						t.Errorf("go-jose verified %s, want %s", verified, payload)
					}

					// golang-jwt, with only this algorithm allowed.
					var mc jwtv5.MapClaims
					tok, err := jwtv5.ParseWithClaims(raw, &mc, func(tok *jwtv5.Token) (any, error) {
						return k.Public, nil
					}, jwtv5.WithValidMethods([]string{alg}), jwtv5.WithIssuer(c.Issuer), jwtv5.WithExpirationRequired())
					if err != nil || !tok.Valid {
						t.Fatalf("golang-jwt: %v", err)
					}
					if tok.Header["typ"] != typ || tok.Header["kid"] != k.ID || mc["jti"] != c.ID || mc["sub"] != nilIfEmpty(c.Subject) {
						t.Errorf("golang-jwt reads header %v, claims %v", tok.Header, mc)
					}

					// And tokend's own verifier.
					v := token.Verifier{Issuer: c.Issuer, Audience: c.Audience[0]}
					back, _, err := v.Verify(ring, raw, token.Expectations{Algorithms: []string{alg}, Types: []string{typ}}, now)
					if err != nil {
						t.Fatalf("token.Verify: %v", err)
					}
					if back.ID != c.ID || back.Subject != c.Subject {
						t.Errorf("token.Verify read %+v", back)
					}
				})
			}
		}
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// TestSignRefusesMismatchedKey: a key whose type is not its algorithm's
// signs nothing.
func TestSignRefusesMismatchedKey(t *testing.T) {
	now := time.Now()
	ec, err := keys.Generate("ES256", now, now)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.NewRing([]*tokend.SigningKey{ec}, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ring.Signing("ES256", now)
	for _, alg := range []string{"EdDSA", "RS256", "RS512", "HS256", "none", ""} {
		wrong := &keys.Key{ID: k.ID, Alg: alg, Private: k.Private, Public: k.Public}
		if raw, err := token.Sign(wrong, token.TypeAccess, claimSets(now)["client"]); err == nil {
			t.Errorf("an ECDSA key signed as %q: %s", alg, raw)
		}
	}
}

func TestMayHaveType(t *testing.T) {
	now := time.Now()
	sk, _ := keys.Generate("ES256", now, now)
	ring, _ := keys.NewRing([]*tokend.SigningKey{sk}, time.Hour, nil)
	k, _ := ring.Signing("ES256", now)
	access, _ := token.Sign(k, token.TypeAccess, claimSets(now)["client"])
	refresh, _ := token.Sign(k, token.TypeJWT, claimSets(now)["refresh"])
	enc := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) + ".e30.sig" }
	for _, tc := range []struct {
		name, raw string
		want      bool
	}{
		{"an access token", access, false},
		{"a refresh JWT", refresh, true},
		{"typ escaped", enc(`{"alg":"ES256","typ":"\u004aWT"}`), true},
		{"no typ", enc(`{"alg":"ES256"}`), false},
		{"JWT elsewhere", enc(`{"alg":"ES256","kid":"JWT"}`), true},
		{"bad base64", "!!!.e30.sig", true},
		{"padded base64", base64.URLEncoding.EncodeToString([]byte(`{"typ":"JWT","x":1}`)) + ".e30.sig", true},
		{"no dot", "abc", true},
		{"a long header", enc(`{"typ":"at+jwt","x":"` + strings.Repeat("a", 2000) + `"}`), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := token.MayHaveType(tc.raw, token.TypeJWT); got != tc.want {
				t.Errorf("MayHaveType = %v, want %v", got, tc.want)
			}
		})
	}
}
