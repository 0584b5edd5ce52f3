package keys

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend"
)

// Public parts of the key ring, for verifiers that are configured with a
// key rather than a JWKS URL (Atoti takes an RSA public key in PEM).
// Nothing here ever returns a private part.

// PublicKey returns the public key of a stored signing key, opening its
// private part with vault (nil: keys stored in the clear).
func PublicKey(sk *tokend.SigningKey, vault *Vault) (crypto.PublicKey, error) {
	signer, err := openSigner(sk, vault)
	if err != nil {
		return nil, err
	}
	return signer.Public(), nil
}

// PublicPEM encodes a public key as a PKIX "PUBLIC KEY" PEM block (RFC
// 7468 §13), the form OpenSSL and Java's X509EncodedKeySpec read.
func PublicPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// PublicJWK is the JWK of a public key as the JWKS publishes it (RFC 7517
// §4: kid, alg, use "sig").
func PublicJWK(kid, alg string, pub crypto.PublicKey) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}
}
