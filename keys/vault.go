package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// Vault seals secrets at rest (signing keys' private parts, the install's
// MAC keys) with AES-256-GCM under a master key that lives outside the
// store. A nil *Vault seals nothing: without a master key, secrets are
// stored as they are.
type Vault struct {
	aead cipher.AEAD
	// id tells vaults apart without keeping the key itself around.
	id [32]byte
}

// sealedPrefix marks sealed bytes; a plain PKCS #8 key starts with 0x30,
// and a clear random secret starts with these 17 bytes with probability
// 2^-136, so the prefix alone says whether a value is sealed.
var sealedPrefix = []byte("tokend-sealed-v1:")

// IsSealed reports whether b is a value that Seal made (under some master
// key), as opposed to a value stored in the clear.
func IsSealed(b []byte) bool { return bytes.HasPrefix(b, sealedPrefix) }

// ErrNoMasterKey is returned when the store holds sealed secrets and no
// master key was given.
var ErrNoMasterKey = errors.New("the store's secrets are encrypted with a master key: set TOKEND_MASTER_KEY or --master-key-file")

// ErrWrongMasterKey is returned when sealed secrets do not open with the
// master key given.
var ErrWrongMasterKey = errors.New("the store's secrets do not open with this master key")

// NewVault makes a vault from master key bytes, at least 32 of them and
// random: SHA-256 of them is the AES-256 key, which is a sound derivation
// for random bytes and no stretching at all for a passphrase (LoadVault
// refuses those).
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
	return &Vault{aead: aead, id: sha256.Sum256(append([]byte("tokend vault id\x00"), k[:]...))}, nil
}

// SameKey reports whether v and o seal with the same key (two nil vaults
// are the same: neither seals).
func (v *Vault) SameKey(o *Vault) bool {
	if v == nil || o == nil {
		return v == nil && o == nil
	}
	return subtle.ConstantTimeCompare(v.id[:], o.id[:]) == 1
}

// ErrWeakMasterKey is returned for a master key that does not carry 32
// random bytes, such as a passphrase: AES would be keyed with a plain hash
// of it, which a dictionary attack walks through quickly.
var ErrWeakMasterKey = errors.New("the master key must be at least 32 random bytes, given as base64 or hex (make one with `openssl rand -base64 32`); a passphrase is refused. " +
	"A store sealed under a passphrase moves to a new key with `tokend key reseal --old-master-key-file OLD --master-key-file NEW`")

// LoadVault reads the master key from envValue (TOKEND_MASTER_KEY) or, if
// that is empty, from file (--master-key-file); with neither it returns a
// nil vault. The key must carry at least 32 random bytes (see strongKey);
// anything else fails with ErrWeakMasterKey.
//
// The AES key is derived from the key as tokend always has (SHA-256 of the
// base64-decoded bytes if the key is standard base64 of 32 bytes or more,
// else of the key's own bytes), so stores sealed under a valid key keep
// opening.
func LoadVault(envValue, file string) (*Vault, error) {
	return loadVault(envValue, file, false)
}

// LoadOldVault is LoadVault for the master key being replaced (tokend key
// reseal): it also takes a passphrase that older versions accepted, so that
// a store sealed under one can be moved to a strong key.
func LoadOldVault(envValue, file string) (*Vault, error) {
	return loadVault(envValue, file, true)
}

func loadVault(envValue, file string, allowWeak bool) (*Vault, error) {
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
	if !allowWeak && !strongKey(raw) {
		return nil, ErrWeakMasterKey
	}
	if b, err := base64.StdEncoding.DecodeString(raw); err == nil && len(b) >= 32 {
		return NewVault(b)
	}
	return NewVault([]byte(raw))
}

// strongKey reports whether raw carries at least 32 random bytes: it is the
// base64 (either alphabet, padded or not) or the hex of 32 bytes or more,
// or it is 32 bytes or more that are not text at all (a file of raw random
// bytes). Text that is none of these, a passphrase, is refused.
func strongKey(raw string) bool {
	// Hex first: hex digits are base64 too, and would count for more bytes.
	if b, err := hex.DecodeString(raw); err == nil {
		return len(b) >= 32
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(raw); err == nil && len(b) >= 32 {
			return true
		}
	}
	// 32 random bytes are valid UTF-8 with a vanishing probability; a
	// passphrase always is.
	return len(raw) >= 32 && !utf8.ValidString(raw)
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
	if !IsSealed(blob) {
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
