package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// NewClientSecret returns a fresh client secret: 32 random bytes, base64url
// encoded (43 characters).
func NewClientSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewKey returns 32 random bytes, for install-wide MAC keys.
func NewKey() ([]byte, error) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return b, err
}

// ClientSecretHash is the keyed hash under which a client secret is stored:
// HMAC-SHA-256 with the install's pepper.
func ClientSecretHash(pepper []byte, secret string) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// CheckClientSecret reports whether secret hashes to want, in constant time.
// An empty want (a public client, or an unknown one) never matches, but costs
// the same.
func CheckClientSecret(pepper []byte, secret string, want []byte) bool {
	got := ClientSecretHash(pepper, secret)
	if len(want) != len(got) {
		hmac.Equal(got, got)
		return false
	}
	return hmac.Equal(got, want)
}
