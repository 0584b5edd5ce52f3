package token_test

import (
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/token"
)

func claims(now time.Time) *token.Claims {
	return &token.Claims{Issuer: "iss", Audience: []string{"aud"}, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), ID: "x"}
}

func symmetric(t *testing.T, owner, secret string) *keys.Symmetric {
	t.Helper()
	k, err := keys.NewSymmetric(owner, "HS256", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSymmetricVerification checks that each verification path allows its
// own algorithms only: the ring's path refuses an HMAC algorithm in its
// list before reading the token, the symmetric path an asymmetric one; an
// HS256 token made with the ring's public key (algorithm confusion) passes
// neither; a symmetric key verifies only tokens whose header names its
// algorithm and kid.
func TestSymmetricVerification(t *testing.T) {
	now := time.Now()
	ring, ringKey := testRing(t)
	v := token.Verifier{Issuer: "iss", Audience: "aud"}
	sk := symmetric(t, "simplejwt", "0123456789abcdef0123456789abcdef")
	other := symmetric(t, "taiki", "0123456789abcdef0123456789abcdef")
	if sk.ID == other.ID {
		t.Fatal("two dialects got one kid from one secret")
	}
	hs, err := token.Sign(sk, token.TypeJWT, claims(now))
	if err != nil {
		t.Fatal(err)
	}
	es, err := token.Sign(ringKey, token.TypeJWT, claims(now))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := v.VerifySymmetric(sk, hs, token.Expectations{Algorithms: []string{"HS256"}}, now); err != nil {
		t.Fatalf("the key's own token: %v", err)
	}
	for name, check := range map[string]func() error{
		"HS256 allowed on the ring's path": func() error {
			_, _, err := v.Verify(ring, hs, token.Expectations{Algorithms: []string{"ES256", "HS256"}}, now)
			return err
		},
		"ES256 allowed on the symmetric path": func() error {
			_, err := v.VerifySymmetric(sk, es, token.Expectations{Algorithms: []string{"HS256", "ES256"}}, now)
			return err
		},
		"the key's algorithm not allowed": func() error {
			_, err := v.VerifySymmetric(sk, hs, token.Expectations{Algorithms: []string{"HS512"}}, now)
			return err
		},
	} {
		if err := check(); err == nil || tokend.ErrorCode(err) == tokend.EINVALIDTOKEN {
			t.Fatalf("%s: %v, want a refusal before the token is read", name, err)
		}
	}
	pub, _ := x509.MarshalPKIXPublicKey(ringKey.Public)
	confused, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pub}, (&jose.SignerOptions{}).WithHeader("kid", ringKey.ID))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims(now))
	jws, _ := confused.Sign(payload)
	forged, _ := jws.CompactSerialize()
	if _, _, err := v.Verify(ring, forged, token.Expectations{Algorithms: keys.Algorithms}, now); tokend.ErrorCode(err) != tokend.EINVALIDTOKEN {
		t.Fatalf("HS256 with the public key on the ring's path: %v", err)
	}
	if _, err := v.VerifySymmetric(sk, forged, token.Expectations{Algorithms: []string{"HS256"}}, now); tokend.ErrorCode(err) != tokend.EINVALIDTOKEN {
		t.Fatalf("HS256 with the public key on the symmetric path: %v", err)
	}
	// Same secret, other owner: another kid, refused.
	if _, err := v.VerifySymmetric(other, hs, token.Expectations{Algorithms: []string{"HS256"}}, now); tokend.ErrorCode(err) != tokend.EINVALIDTOKEN {
		t.Fatalf("another dialect's key took the token: %v", err)
	}
	if _, _, err := v.Verify(ring, hs, token.Expectations{Algorithms: keys.Algorithms}, now); tokend.ErrorCode(err) != tokend.EINVALIDTOKEN {
		t.Fatalf("the ring's path took an HS256 token: %v", err)
	}
	if alg, kid, ok := token.HeaderAlg(hs); !ok || alg != "HS256" || kid != sk.ID {
		t.Fatalf("HeaderAlg: %q %q %v", alg, kid, ok)
	}
}

// TestClaimNames checks that renamed claims are written and read under
// their new names only, and that names colliding with tokend's claims are
// refused.
func TestClaimNames(t *testing.T) {
	now := time.Now()
	ring, k := testRing(t)
	names := token.ClaimNames{"user_id": "uid", "token_type": "kind"}
	c := claims(now)
	c.UserID, c.TokenType = "42", "access"
	raw, err := token.SignNamed(k, token.TypeJWT, c, names)
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.Split(raw, ".")[1]
	v := token.Verifier{Issuer: "iss", Audience: "aud"}
	got, _, err := v.Verify(ring, raw, token.Expectations{Algorithms: keys.Algorithms, Names: names}, now)
	if err != nil || got.UserID != "42" || got.TokenType != "access" {
		t.Fatalf("read back under the names: %+v %v (%s)", got, err, payload)
	}
	plain, _, err := v.Verify(ring, raw, token.Expectations{Algorithms: keys.Algorithms}, now)
	if err != nil || plain.UserID != "" || plain.TokenType != "" {
		t.Fatalf("read under tokend's names: %+v %v", plain, err)
	}
	for _, bad := range []token.ClaimNames{
		{"user_id": "sub"}, {"user_id": "a", "token_type": "a"}, {"jti": "id"}, {"user_id": ""}, {"token_type": "has space"},
	} {
		if bad.Validate() == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}

// TestNumericID checks user_id's two forms.
func TestNumericID(t *testing.T) {
	for id, want := range map[token.NumericID]string{
		"42": `42`, "0": `0`, "-7": `-7`, "042": `"042"`, "9223372036854775807": `9223372036854775807`,
		"9223372036854775808": `"9223372036854775808"`, "01a22d39-f186": `"01a22d39-f186"`, "1e3": `"1e3"`,
	} {
		b, err := json.Marshal(id)
		if err != nil || string(b) != want {
			t.Fatalf("%q: %s %v, want %s", id, b, err, want)
		}
		var back token.NumericID
		if err := json.Unmarshal(b, &back); err != nil || back != id {
			t.Fatalf("%s read back as %q %v", b, back, err)
		}
	}
	for _, bad := range []string{`4.2`, `1e3`, `true`, `{}`, `[]`, `042`} {
		var id token.NumericID
		if json.Unmarshal([]byte(bad), &id) == nil {
			t.Fatalf("%s read as an id %q", bad, id)
		}
	}
}
