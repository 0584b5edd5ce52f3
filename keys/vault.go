package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Vault seals secrets at rest (signing keys' private parts, the install's
// MAC keys) with AES-256-GCM under a master key that lives outside the
// store. A nil *Vault seals nothing: without a master key, secrets are
// stored as they are.
type Vault struct {
	aead cipher.AEAD
}

// sealedPrefix marks sealed bytes; a plain PKCS #8 key starts with 0x30.
var sealedPrefix = []byte("tokend-sealed-v1:")

// ErrNoMasterKey is returned when the store holds sealed secrets and no
// master key was given.
var ErrNoMasterKey = errors.New("the store's secrets are encrypted with a master key: set TOKEND_MASTER_KEY or --master-key-file")

// ErrWrongMasterKey is returned when sealed secrets do not open with the
// master key given.
var ErrWrongMasterKey = errors.New("the store's secrets do not open with this master key")

// NewVault makes a vault from a master key of at least 32 bytes (or the
// base64 of one). It is stretched with SHA-256 into the AES-256 key.
func NewVault(master []byte) (*Vault, error) {
	if len(master) < 32 {
		return nil, errors.New("master key must be at least 32 bytes (e.g. `openssl rand -base64 32`)")
	}
	k := sha256.Sum256(master)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Vault{aead: aead}, nil
}

// LoadVault reads the master key from envValue (TOKEND_MASTER_KEY) or, if
// that is empty, from file (--master-key-file); with neither it returns a
// nil vault. A value that is valid base64 of 32 or more bytes is decoded.
func LoadVault(envValue, file string) (*Vault, error) {
	raw := envValue
	if raw == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read master key file: %w", err)
		}
		raw = string(b)
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	if b, err := base64.StdEncoding.DecodeString(raw); err == nil && len(b) >= 32 {
		return NewVault(b)
	}
	return NewVault([]byte(raw))
}

// Seal encrypts plain, bound to label (say, the kid) so that a sealed value
// cannot be swapped for another. A nil vault returns plain unchanged.
func (v *Vault) Seal(label string, plain []byte) ([]byte, error) {
	if v == nil {
		return plain, nil
	}
	nonce := make([]byte, v.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(append([]byte{}, sealedPrefix...), nonce...)
	return v.aead.Seal(out, nonce, plain, []byte(label)), nil
}

// Open returns the plain bytes of a value Seal made under label; a value
// that was never sealed comes back as it is.
func (v *Vault) Open(label string, blob []byte) ([]byte, error) {
	if !bytes.HasPrefix(blob, sealedPrefix) {
		return blob, nil
	}
	if v == nil {
		return nil, ErrNoMasterKey
	}
	rest := blob[len(sealedPrefix):]
	n := v.aead.NonceSize()
	if len(rest) < n {
		return nil, ErrWrongMasterKey
	}
	plain, err := v.aead.Open(nil, rest[:n], rest[n:], []byte(label))
	if err != nil {
		return nil, ErrWrongMasterKey
	}
	return plain, nil
}
