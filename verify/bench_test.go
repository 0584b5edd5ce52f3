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
//	go test -run '^$' -bench 'Verify|RawECDSA' -benchtime 2s -count 5 ./verify/
//
// and compare ns/op. The verifier follows the revocation feed, so each
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
	k, err := is.Engine.Ring().Signing("ES256", is.Clock.Now())
	if err != nil {
		b.Fatal(err)
	}
	pub := k.Public.(*ecdsa.PublicKey)
	for b.Loop() {
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
}
