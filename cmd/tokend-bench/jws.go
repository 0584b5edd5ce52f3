package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sync"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// What the ceiling does with each request, beside answering: what any
// server that issues tokens must do at the least. It reads the body
// (a form or JSON), checks the client's Basic credentials against a keyed
// hash of the secret (never the secret itself), and signs with the
// standard library, writing the compact JWS itself.

var ceilBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

var b64 = base64.RawURLEncoding

// signCompact returns header.payload.signature, header being already
// encoded.
func signCompact(alg string, priv crypto.Signer, header string, payload []byte) (string, error) {
	bp := ceilBufPool.Get().(*[]byte)
	defer ceilBufPool.Put(bp)
	buf := append((*bp)[:0], header...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, payload)
	sig, err := jwsSignature(alg, priv, buf)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	*bp = buf[:0]
	return string(buf), nil
}

// jwsSignature signs input by alg (RFC 7518 §3).
func jwsSignature(alg string, priv crypto.Signer, input []byte) ([]byte, error) {
	var h crypto.Hash
	switch alg {
	case "ES256", "RS256", "PS256":
		h = crypto.SHA256
	case "ES384", "RS384", "PS384":
		h = crypto.SHA384
	case "ES512", "RS512", "PS512":
		h = crypto.SHA512
	case "EdDSA":
		k, ok := priv.(ed25519.PrivateKey)
		if !ok {
			return nil, errors.New("EdDSA needs an Ed25519 key")
		}
		return ed25519.Sign(k, input), nil
	default:
		return nil, fmt.Errorf("no signer for %s", alg)
	}
	digest := sum(h, input)
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		der, err := ecdsa.SignASN1(rand.Reader, k, digest)
		if err != nil {
			return nil, err
		}
		return fixedRS(der, (k.Curve.Params().BitSize+7)/8)
	case *rsa.PrivateKey:
		if alg[0] == 'P' {
			return rsa.SignPSS(rand.Reader, k, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(nil, k, h, digest)
	}
	return nil, fmt.Errorf("%s: wrong key type %T", alg, priv)
}

func sum(h crypto.Hash, b []byte) []byte {
	switch h {
	case crypto.SHA256:
		s := sha256.Sum256(b)
		return s[:]
	case crypto.SHA384:
		s := sha512.Sum384(b)
		return s[:]
	default:
		s := sha512.Sum512(b)
		return s[:]
	}
}

// fixedRS turns an ASN.1 ECDSA signature into r and s of n bytes each
// (RFC 7518 §3.4).
func fixedRS(der []byte, n int) ([]byte, error) {
	var seq, r, s cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&r, cbasn1.INTEGER) || !seq.ReadASN1(&s, cbasn1.INTEGER) {
		return nil, errors.New("malformed ECDSA signature")
	}
	out := make([]byte, 2*n)
	for i, v := range [][]byte{r, s} {
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > n {
			return nil, errors.New("malformed ECDSA signature")
		}
		copy(out[(i+1)*n-len(v):], v)
	}
	return out, nil
}

// readRequest reads the request's body as tokend would: a form or a JSON
// object, at most 64 KiB. It answers 400 itself when it cannot.
func readRequest(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch ct {
	case "application/json":
		var v map[string]any
		err = json.NewDecoder(r.Body).Decode(&v)
	case "":
		if r.Method != http.MethodGet {
			err = r.ParseForm()
		}
	default:
		err = r.ParseForm()
	}
	if err != nil {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return false
	}
	return true
}

// credentialCheck checks a client's Basic credentials as a server that
// stores only a keyed hash of each secret does.
type credentialCheck struct {
	id   string
	key  []byte
	hash []byte
}

// newCredentialCheck returns the check of the credentials in auth (an
// Authorization header), or nil when auth holds none.
func newCredentialCheck(auth string) (*credentialCheck, error) {
	if auth == "" {
		return nil, nil
	}
	r := &http.Request{Header: http.Header{"Authorization": {auth}}}
	id, secret, ok := r.BasicAuth()
	if !ok {
		return nil, errors.New("ceiling: the scenario's Authorization header is not Basic")
	}
	key := make([]byte, 32)
	rand.Read(key)
	c := &credentialCheck{id: id, key: key}
	c.hash = c.mac(secret)
	return c, nil
}

func (c *credentialCheck) mac(secret string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// ok reports whether r carries the client's credentials (always, for a
// nil check).
func (c *credentialCheck) ok(r *http.Request) bool {
	if c == nil {
		return true
	}
	id, secret, ok := r.BasicAuth()
	return ok && hmac.Equal([]byte(id), []byte(c.id)) && hmac.Equal(c.mac(secret), c.hash)
}
