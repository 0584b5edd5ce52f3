package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/tokend/tokend/keys"
)

// Signing writes the compact JWS (RFC 7515 §7.1) itself instead of going
// through go-jose's signer, which builds the protected header as a map,
// marshals it twice and signs ECDSA through big.Int: about 130 allocations
// per ES256 token, most of the cost of issuing one beside the signature.
// Here the header is encoded once per key and typ (JWSHeader), the token
// is assembled in a pooled buffer, and the signature comes straight from
// crypto/ecdsa, crypto/ed25519, crypto/rsa or (a dialect's shared key)
// crypto/hmac. The output is the same
// token go-jose would write for the same key, typ and claims (TestSignMatchesGoJose);
// verification still goes through go-jose's parser (Verify).

// buffers are what a token is assembled in: the claims' JSON, then the
// compact form. Pooled, so that signing allocates only the token itself.
type buffers struct{ claims, token []byte }

var bufPool = sync.Pool{New: func() any { return &buffers{make([]byte, 0, 512), make([]byte, 0, 1024)} }}

var b64 = base64.RawURLEncoding

// signClaims returns c signed by k as a compact JWS, the claims that names
// renames under their new names.
func signClaims(k Key, typ string, c *Claims, names ClaimNames) (string, error) {
	bufs := bufPool.Get().(*buffers)
	defer putBufs(bufs)
	var err error
	if names.renames() {
		// Renamed claims are rare (a deployment setting): the general
		// path through encoding/json writes them.
		bufs.claims, err = c.marshal(names)
	} else {
		bufs.claims, err = appendClaims(bufs.claims[:0], c)
	}
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signCompact(k, typ, bufs.claims, bufs)
}

// signCompact returns header.payload.signature for payload signed by k,
// assembled in bufs.token.
func signCompact(k Key, typ string, payload []byte, bufs *buffers) (string, error) {
	buf := append(bufs.token[:0], k.JWSHeader(typ)...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, payload)
	var sigBuf [512]byte // an RSA-4096 signature; P-256 and Ed25519 take 64, HS512 64
	var sig []byte
	var err error
	switch k := k.(type) {
	case *keys.Key:
		sig, err = signature(k, buf, sigBuf[:0])
		if err != nil {
			err = fmt.Errorf("sign token with key %s: %w", k.ID, err)
		}
	case *keys.Symmetric:
		sig, err = k.AppendMAC(sigBuf[:0], buf)
		if err != nil {
			err = fmt.Errorf("sign token: %w", err)
		}
	default:
		err = fmt.Errorf("sign token: unsupported key type %T", k)
	}
	bufs.token = buf
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	bufs.token = buf
	return string(buf), nil
}

func putBufs(bufs *buffers) {
	if cap(bufs.claims) > 64<<10 || cap(bufs.token) > 64<<10 {
		return // an outsized token: let it go rather than pin its buffers
	}
	bufPool.Put(bufs)
}

var errKeyType = errors.New("key type does not match its algorithm")

// signature signs the JWS signing input with k by k's algorithm (RFC 7518
// §3) and appends the signature to dst.
func signature(k *keys.Key, input, dst []byte) ([]byte, error) {
	switch k.Alg {
	case "ES256":
		priv, ok := k.Private.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P256() {
			return nil, errKeyType
		}
		sum := sha256.Sum256(input)
		der, err := ecdsa.SignASN1(rand.Reader, priv, sum[:])
		if err != nil {
			return nil, err
		}
		return appendFixedRS(dst, der, 32)
	case "EdDSA":
		priv, ok := k.Private.(ed25519.PrivateKey)
		if !ok || len(priv) != ed25519.PrivateKeySize {
			return nil, errKeyType
		}
		return append(dst, ed25519.Sign(priv, input)...), nil
	case "RS256", "RS512":
		priv, ok := k.Private.(*rsa.PrivateKey)
		if !ok {
			return nil, errKeyType
		}
		var sig []byte
		var err error
		if k.Alg == "RS256" {
			sum := sha256.Sum256(input)
			sig, err = rsa.SignPKCS1v15(nil, priv, crypto.SHA256, sum[:])
		} else {
			sum := sha512.Sum512(input)
			sig, err = rsa.SignPKCS1v15(nil, priv, crypto.SHA512, sum[:])
		}
		if err != nil {
			return nil, err
		}
		return append(dst, sig...), nil
	default:
		return nil, fmt.Errorf("unsupported signing algorithm %q", k.Alg)
	}
}

// appendFixedRS turns an ASN.1 ECDSA signature into JWS's form: r and s
// as big-endian integers of n bytes each, left-padded with zeros (RFC 7518
// §3.4).
func appendFixedRS(dst, der []byte, n int) ([]byte, error) {
	var seq, r, s cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&r, cbasn1.INTEGER) || !seq.ReadASN1(&s, cbasn1.INTEGER) || !seq.Empty() {
		return nil, errors.New("malformed ECDSA signature")
	}
	for _, v := range []cryptobyte.String{r, s} {
		// A DER INTEGER is minimal and signed: a leading zero byte only
		// keeps a high bit from reading as a sign.
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > n {
			return nil, errors.New("malformed ECDSA signature")
		}
		for range n - len(v) {
			dst = append(dst, 0)
		}
		dst = append(dst, v...)
	}
	return dst, nil
}

// MayHaveType reports whether the compact JWS raw may carry the typ
// header typ (a plain string: no quote, no backslash). It is false only
// when the protected header certainly holds no such string, and then a
// full parse (Verify) would refuse raw for that type anyway: callers use
// it to spare a parse that cannot succeed. Anything it cannot read plainly
// (no dot, bad base64, an escape in the header, a long header) may.
func MayHaveType(raw, typ string) bool {
	dot := strings.IndexByte(raw, '.')
	if dot < 0 || dot > 1024 {
		return true
	}
	var buf [768]byte
	n, err := b64.Decode(buf[:], []byte(raw[:dot]))
	if err != nil {
		return true
	}
	h := buf[:n]
	if bytes.IndexByte(h, '\\') >= 0 {
		return true // "\u004aWT" is JWT too
	}
	return bytes.Contains(h, []byte(`"`+typ+`"`))
}
