package token_test

import (
	"encoding/base64"
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
	extra := base()
	extra.Subject, extra.UserID, extra.TokenType = "u1", "42", "access"
	extra.Extra = map[string]any{"tenant": "<acme>", "level": 3, "tags": []any{"a", "é"}, "sub": "not-this", "exp": 1}
	return map[string]*token.Claims{"client": client, "user": user, "dialects": dialects, "refresh": refresh, "escapes": escapes, "extra": extra}
}

// renames are the claim renamings signing is checked with: none, and a
// dialect's (simplejwt's USER_ID_CLAIM and TOKEN_TYPE_CLAIM).
var renames = map[string]token.ClaimNames{"": nil, "/renamed": {"user_id": "uid", "token_type": "kind"}}

// TestSignMatchesGoJose checks every token tokend signs (every algorithm,
// every typ, every kind of claims, renamed claims or not): its header and
// claims are the bytes go-jose writes for the same key, typ and claims,
// and it verifies with go-jose, with golang-jwt and with token.Verify.
func TestSignMatchesGoJose(t *testing.T) {
	now := time.Now()
	for _, alg := range keys.Algorithms {
		for suffix, names := range renames {
			testSignMatchesGoJose(t, now, alg, suffix, names)
		}
	}
}

func testSignMatchesGoJose(t *testing.T, now time.Time, alg, suffix string, names token.ClaimNames) {
	{
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
				t.Run(alg+"/"+typ+"/"+name+suffix, func(t *testing.T) {
					raw, want, payload := signBoth(t, k, typ, c, names, reference)
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
					back, _, err := v.Verify(ring, raw, token.Expectations{Algorithms: []string{alg}, Types: []string{typ}, Names: names}, now)
					if err != nil {
						t.Fatalf("token.Verify: %v", err)
					}
					if back.ID != c.ID || back.Subject != c.Subject || back.UserID != c.UserID || back.TokenType != c.TokenType {
						t.Errorf("token.Verify read %+v", back)
					}
				})
			}
		}
	}
}

// signBoth signs c with tokend's signer and with go-jose's reference signer
// for the same key and typ: tokend's token, go-jose's, and the claims both
// signed.
func signBoth(t *testing.T, k token.Key, typ string, c *token.Claims, names token.ClaimNames, reference jose.Signer) (raw, want string, payload []byte) {
	t.Helper()
	raw, err := token.SignNamed(k, typ, c, names)
	if err != nil {
		t.Fatal(err)
	}
	payload, err = token.MarshalNamed(c, names)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := reference.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	if want, err = jws.CompactSerialize(); err != nil {
		t.Fatal(err)
	}
	return raw, want, payload
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
	// A dialect's shared-key tokens: the refresh JWT may be one, the
	// RFC 9068 access token may not.
	hk, err := keys.NewSymmetric("simplejwt", "HS256", []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	hsAccess, _ := token.Sign(hk, token.TypeAccess, claimSets(now)["client"])
	hsRefresh, _ := token.Sign(hk, token.TypeJWT, claimSets(now)["refresh"])
	enc := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) + ".e30.sig" }
	for _, tc := range []struct {
		name, raw string
		want      bool
	}{
		{"an access token", access, false},
		{"a refresh JWT", refresh, true},
		{"an HS256 access token", hsAccess, false},
		{"an HS256 refresh JWT", hsRefresh, true},
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

// TestSignSymmetricMatchesGoJose checks the tokens a dialect signs with
// its shared key (HS256, HS384, HS512; every typ and kind of claims,
// renamed claims or not): byte for byte the token go-jose's signer writes
// (HMAC is deterministic), and they verify with golang-jwt and with
// token.VerifySymmetric.
func TestSignSymmetricMatchesGoJose(t *testing.T) {
	now := time.Now()
	secret := []byte(strings.Repeat("0123456789abcdef", 4)) // 64 bytes: long enough for HS512
	for _, alg := range keys.SymmetricAlgorithms {
		k, err := keys.NewSymmetric("simplejwt", alg, secret)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{token.TypeAccess, token.TypeJWT} {
			reference, err := k.Signer(typ)
			if err != nil {
				t.Fatal(err)
			}
			for suffix, names := range renames {
				for name, c := range claimSets(now) {
					t.Run(alg+"/"+typ+"/"+name+suffix, func(t *testing.T) {
						raw, want, _ := signBoth(t, k, typ, c, names, reference)
						if raw != want {
							t.Errorf("token\n %s\ngo-jose writes\n %s", raw, want)
						}

						var mc jwtv5.MapClaims
						tok, err := jwtv5.ParseWithClaims(raw, &mc, func(*jwtv5.Token) (any, error) { return secret, nil },
							jwtv5.WithValidMethods([]string{alg}), jwtv5.WithIssuer(c.Issuer), jwtv5.WithExpirationRequired())
						if err != nil || !tok.Valid {
							t.Fatalf("golang-jwt: %v", err)
						}
						if tok.Header["typ"] != typ || tok.Header["kid"] != k.ID || mc["jti"] != c.ID {
							t.Errorf("golang-jwt reads header %v, claims %v", tok.Header, mc)
						}
						if c.Extra != nil {
							if mc["tenant"] != "<acme>" || mc["sub"] != c.Subject {
								t.Errorf("golang-jwt reads custom claims %v", mc)
							}
						}
						if names != nil && c.UserID != "" {
							if _, ok := mc["user_id"]; ok || mc["uid"] == nil {
								t.Errorf("user_id not renamed: %v", mc)
							}
						}

						v := token.Verifier{Issuer: c.Issuer, Audience: c.Audience[0]}
						back, err := v.VerifySymmetric(k, raw, token.Expectations{Algorithms: []string{alg}, Types: []string{typ}, Names: names}, now)
						if err != nil {
							t.Fatalf("token.VerifySymmetric: %v", err)
						}
						if back.ID != c.ID || back.Subject != c.Subject || back.UserID != c.UserID || back.TokenType != c.TokenType {
							t.Errorf("token.VerifySymmetric read %+v", back)
						}
					})
				}
			}
		}
	}
}
