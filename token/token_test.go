package token_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/token"
)

func testRing(t testing.TB) (*keys.Ring, *keys.Key) {
	t.Helper()
	now := time.Now()
	sk, err := keys.Generate("ES256", now, now)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.NewRing([]*tokend.SigningKey{sk}, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ring.Signing("ES256", now)
	if err != nil {
		t.Fatal(err)
	}
	return ring, k
}

// FuzzVerify feeds arbitrary strings to the token parser: it never panics,
// and nothing but a token tokend signed verifies.
func FuzzVerify(f *testing.F) {
	ring, k := testRing(f)
	now := time.Now()
	good, err := token.Sign(k, token.TypeAccess, &token.Claims{Issuer: "iss", Audience: []string{"aud"}, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), ID: "x"})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, good + "x", strings.Replace(good, ".", "..", 1), "a.b.c", "", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("e", 9000)} {
		f.Add(s)
	}
	v := token.Verifier{Issuer: "iss", Audience: "aud"}
	exp := token.Expectations{Algorithms: keys.Algorithms, Types: []string{token.TypeAccess}}
	f.Fuzz(func(t *testing.T, raw string) {
		c, _, err := v.Verify(ring, raw, exp, now)
		// Only the signed claims can verify (a string may differ from the
		// genuine token in base64 padding bits and still carry them).
		if err == nil && (c.ID != "x" || c.Issuer != "iss") {
			t.Fatalf("a token tokend did not sign verified: %q -> %+v", raw, c)
		}
		if err != nil && tokend.ErrorCode(err) != tokend.EINVALIDTOKEN {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

func TestVerifyNeedsAlgorithms(t *testing.T) {
	ring, _ := testRing(t)
	v := token.Verifier{Issuer: "iss"}
	if _, _, err := v.Verify(ring, "a.b.c", token.Expectations{}, time.Now()); err == nil {
		t.Fatal("Verify without allowed algorithms must fail")
	}
}

func benchClaims(now time.Time) *token.Claims {
	return &token.Claims{
		Issuer: "http://127.0.0.1:8080", Audience: []string{"http://127.0.0.1:8080"}, Subject: "6f1c0a9e-6c55-4a63-9a38-1b7a5d3c2e10",
		ClientID: "6f1c0a9e-6c55-4a63-9a38-1b7a5d3c2e10", IssuedAt: now.Unix(), ExpiresAt: now.Add(15 * time.Minute).Unix(), ID: token.NewID(),
	}
}

func BenchmarkSign(b *testing.B) {
	for _, alg := range keys.Algorithms {
		b.Run(alg, func(b *testing.B) {
			now := time.Now()
			sk, err := keys.Generate(alg, now, now)
			if err != nil {
				b.Fatal(err)
			}
			ring, _ := keys.NewRing([]*tokend.SigningKey{sk}, time.Hour, nil)
			k, _ := ring.Signing(alg, now)
			c := benchClaims(now)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := token.Sign(k, token.TypeAccess, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range keys.Algorithms {
		b.Run(alg, func(b *testing.B) {
			now := time.Now()
			sk, _ := keys.Generate(alg, now, now)
			ring, _ := keys.NewRing([]*tokend.SigningKey{sk}, time.Hour, nil)
			k, _ := ring.Signing(alg, now)
			raw, _ := token.Sign(k, token.TypeAccess, benchClaims(now))
			v := token.Verifier{Issuer: "http://127.0.0.1:8080", Audience: "http://127.0.0.1:8080"}
			exp := token.Expectations{Algorithms: keys.Algorithms, Types: []string{token.TypeAccess}}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := v.Verify(ring, raw, exp, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
