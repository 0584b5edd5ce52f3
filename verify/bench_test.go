package verify_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/verify"
)

// The package's cost over the bare signature check: run them in one go,
//
//	go test -run '^$' -bench 'Verify|Raw' -benchtime 3s -count 3 ./verify/
//
// and compare ns/op (BenchmarkUncachedVsRaw reports the ratio of the two
// measured in alternation, which a busy machine disturbs least). The verifier follows the revocation feed, so each
// Verify also checks the token, session, user and client against it.
// BenchmarkVerify presents the same token again and again, as a client
// does until its token expires (the token cache answers);
// BenchmarkVerifyUncached pays the full price every time.

func BenchmarkVerify(b *testing.B) {
	is := newIssuer(b)
	v := is.verifier(b, func(o *verify.Options) { o.FeedWait = 30 * time.Second })
	tok := is.appToken("orders:read")
	ctx := b.Context()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached is Verify with the token cache off: what a
// token costs the first time it is seen (parsing, signature, claims).
func BenchmarkVerifyUncached(b *testing.B) {
	is := newIssuer(b)
	v := is.verifier(b, func(o *verify.Options) { o.FeedWait = 30 * time.Second; o.CacheSize = -1 })
	tok := is.appToken("orders:read")
	ctx := b.Context()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawECDSA checks the same token's signature with crypto/ecdsa
// alone: split, decode the signature, hash, verify. No header, no claims.
func BenchmarkRawECDSA(b *testing.B) {
	is := newIssuer(b)
	tok := is.appToken("orders:read")
	pub := is.publicKey(b)
	for b.Loop() {
		rawECDSA(b, pub, tok)
	}
}

// BenchmarkUncachedVsRaw alternates the two in one loop, so that a busy
// machine slows both alike, and reports their ratio (raw time / Verify
// time: 1 would mean Verify costs nothing over the signature check).
func BenchmarkUncachedVsRaw(b *testing.B) {
	is := newIssuer(b)
	v := is.verifier(b, func(o *verify.Options) { o.FeedWait = 30 * time.Second; o.CacheSize = -1 })
	tok := is.appToken("orders:read")
	pub := is.publicKey(b)
	ctx := b.Context()
	var raw, pkg time.Duration
	for b.Loop() {
		t0 := time.Now()
		rawECDSA(b, pub, tok)
		t1 := time.Now()
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		raw, pkg = raw+t1.Sub(t0), pkg+time.Since(t1)
	}
	b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(pkg.Nanoseconds())/float64(b.N), "verify-ns/op")
	b.ReportMetric(float64(raw)/float64(pkg), "raw/verify")
}

func (is *issuer) publicKey(b *testing.B) *ecdsa.PublicKey {
	k, err := is.Engine.Ring().Signing("ES256", is.Clock.Now())
	if err != nil {
		b.Fatal(err)
	}
	return k.Public.(*ecdsa.PublicKey)
}

func rawECDSA(b *testing.B, pub *ecdsa.PublicKey, tok string) {
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		b.Fatal("bad signature encoding")
	}
	sum := sha256.Sum256([]byte(tok[:i]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, sum[:], r, s) {
		b.Fatal("signature does not verify")
	}
}
