package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// SymmetricAlgorithms are the HMAC algorithms a dialect may sign with when
// the verifiers it must satisfy hold a shared secret instead of a public
// key (Django's simplejwt SIGNING_KEY, Taiki's HS256 tokens). They are
// never in Algorithms: the ring, the JWKS and every verification that
// does not name a dialect's own key know nothing of them.
var SymmetricAlgorithms = []string{"HS256", "HS384", "HS512"}

// IsSymmetric reports whether alg is one of SymmetricAlgorithms.
func IsSymmetric(alg string) bool { return slices.Contains(SymmetricAlgorithms, alg) }

// MinSymmetricKeyLen is the shortest key each HMAC algorithm takes: the
// size of its hash output (RFC 7518 §3.2 says MUST), so never less than 32
// bytes.
var MinSymmetricKeyLen = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// Symmetric is one dialect's HMAC signing key. It is no part of the Ring:
// it is never published (anyone who can verify with it can sign with it),
// and tokens it signed are verified only where its owner's tokens belong
// (the owner's endpoints, introspection and revocation). The secret never
// leaves this type: it is not exported, and its String, GoString and
// LogValue name the owner, algorithm and kid only.
type Symmetric struct {
	// Owner is the dialect that signs with the key.
	Owner string
	Alg   string
	// ID is the kid of the tokens it signs: derived from the secret and
	// the owner, so two dialects never share a kid even with one secret,
	// and a changed secret gets a new kid.
	ID string

	secret []byte

	mu      sync.Mutex
	signers map[string]jose.Signer // by JWS typ header

	headers sync.Map // JWS typ -> encoded protected header (JWSHeader)
}

// JWSHeader returns the protected header of a compact JWS signed by this
// key with the given typ, base64url-encoded: the bytes go-jose writes for
// the Signer of the same typ (alg, kid, typ, in that order).
func (k *Symmetric) JWSHeader(typ string) string { return jwsHeader(&k.headers, k.Alg, k.ID, typ) }

// AppendMAC appends to dst the HMAC of input (a JWS signing input) by the
// key's algorithm (RFC 7518 §3.2).
func (k *Symmetric) AppendMAC(dst, input []byte) ([]byte, error) {
	var h func() hash.Hash
	switch k.Alg {
	case "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	default:
		return nil, fmt.Errorf("%s key %s: unsupported algorithm %q", k.Owner, k.ID, k.Alg)
	}
	m := hmac.New(h, k.secret)
	m.Write(input)
	return m.Sum(dst), nil
}

// NewSymmetric makes owner's key for alg (HS256, HS384 or HS512) from
// secret, which must be at least MinSymmetricKeyLen[alg] bytes long.
func NewSymmetric(owner, alg string, secret []byte) (*Symmetric, error) {
	if !IsSymmetric(alg) {
		return nil, fmt.Errorf("%s signing key: algorithm %q is not HS256, HS384 or HS512", owner, alg)
	}
	if n := MinSymmetricKeyLen[alg]; len(secret) < n {
		return nil, fmt.Errorf("%s signing key: an %s key must be at least %d bytes (make one with `openssl rand -base64 %d`)", owner, alg, n, n)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("tokend symmetric kid\x00" + owner + "\x00" + alg))
	return &Symmetric{
		Owner:  owner,
		Alg:    alg,
		ID:     "hs-" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12]),
		secret: slices.Clone(secret),
	}, nil
}

// LoadSymmetric reads owner's key from envValue (its TOKEND_..._SIGNING_KEY
// variable) or, if that is empty, from file, whose final newline is
// dropped. The key is the text exactly as given, not decoded, as Django's
// SIGNING_KEY string is; NewSymmetric checks its length.
func LoadSymmetric(owner, alg, envValue, file string) (*Symmetric, error) {
	raw := envValue
	if raw == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read %s signing key file: %w", owner, err)
		}
		raw = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	if raw == "" {
		return nil, fmt.Errorf("%s signs with %s: give its key (a file, or the environment)", owner, alg)
	}
	return NewSymmetric(owner, alg, []byte(raw))
}

// SameSecret reports, in constant time, whether k and o hold one secret.
func (k *Symmetric) SameSecret(o *Symmetric) bool {
	return subtle.ConstantTimeCompare(k.secret, o.secret) == 1
}

// Signer returns a JWS signer for this key that sets the typ and kid headers.
func (k *Symmetric) Signer(typ string) (jose.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.signers[typ]; ok {
		return s, nil
	}
	// go-jose writes a kid only for keys with a public part: set it here.
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", k.ID)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Alg), Key: k.secret}, opts)
	if err != nil {
		return nil, fmt.Errorf("signer for %s key %s: %w", k.Owner, k.ID, err)
	}
	if k.signers == nil {
		k.signers = map[string]jose.Signer{}
	}
	k.signers[typ] = s
	return s, nil
}

// ErrNotThisKey is Verify's error for a JWS whose header does not name
// this key's algorithm and kid.
var ErrNotThisKey = errors.New("token is not signed with this key")

// Verify checks jws's one signature with this key and returns its payload.
// The header must name exactly this key's algorithm and kid: the key is
// never tried on a token that says it was signed any other way.
func (k *Symmetric) Verify(jws *jose.JSONWebSignature) ([]byte, error) {
	if len(jws.Signatures) != 1 {
		return nil, ErrNotThisKey
	}
	h := jws.Signatures[0].Header
	if h.Algorithm != k.Alg || h.KeyID != k.ID {
		return nil, ErrNotThisKey
	}
	return jws.Verify(k.secret)
}

// String names the key without its secret.
func (k *Symmetric) String() string { return k.Alg + " key " + k.ID + " of " + k.Owner }

// GoString is String, so that %#v shows no secret either.
func (k *Symmetric) GoString() string { return k.String() }

// LogValue logs the key without its secret.
func (k *Symmetric) LogValue() slog.Value {
	return slog.GroupValue(slog.String("owner", k.Owner), slog.String("alg", k.Alg), slog.String("kid", k.ID))
}

// MarshalJSON writes the key without its secret.
func (k *Symmetric) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Owner string `json:"owner"`
		Alg   string `json:"alg"`
		Kid   string `json:"kid"`
	}{k.Owner, k.Alg, k.ID})
}
