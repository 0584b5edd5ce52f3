// Package keys generates signing keys and holds the key ring: which key
// signs now for each algorithm, which keys verify, and the JWKS document
// (RFC 7517) that publishes them.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend"
)

// Algorithms are the signature algorithms tokend signs with. All are
// asymmetric, so verifiers hold only public keys.
var Algorithms = []string{"ES256", "EdDSA", "RS256", "RS512"}

// ValidAlg reports whether alg is one tokend can sign with.
func ValidAlg(alg string) bool { return slices.Contains(Algorithms, alg) }

// Generate makes a new private key for alg that starts signing at activatesAt.
// Its kid is the RFC 7638 thumbprint of the public key.
func Generate(alg string, now, activatesAt time.Time) (*tokend.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "RS512":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, tokend.Errorf(tokend.EINVALID, "unsupported algorithm %q (want one of ES256, EdDSA, RS256, RS512)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode %s key: %w", alg, err)
	}
	jwk := jose.JSONWebKey{Key: priv.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("thumbprint %s key: %w", alg, err)
	}
	return &tokend.SigningKey{
		ID:          base64.RawURLEncoding.EncodeToString(tp),
		Alg:         alg,
		PrivateKey:  der,
		CreatedAt:   now,
		ActivatesAt: activatesAt,
	}, nil
}

// Key is a parsed signing key.
type Key struct {
	ID      string
	Alg     string
	Private crypto.Signer
	Public  crypto.PublicKey
	// ActivatesAt: when it starts signing. RetiredAt: when a newer key of
	// the same algorithm took over (zero while none has).
	ActivatesAt time.Time
	RetiredAt   time.Time

	headers sync.Map // JWS typ -> encoded protected header (JWSHeader)
}

// JWSHeader returns the protected header of a compact JWS signed by this
// key with the given typ, base64url-encoded: {"alg":...,"kid":...,"typ":...}
// (typ left out when empty), the bytes go-jose writes for the same key and
// type. It is built once per typ and reused, so signing a token costs no
// JSON work for its header.
func (k *Key) JWSHeader(typ string) string {
	return jwsHeader(&k.headers, k.Alg, k.ID, typ)
}

// jwsHeader returns the encoded header for alg, kid and typ from cache,
// building and storing it the first time.
func jwsHeader(cache *sync.Map, alg, kid, typ string) string {
	if h, ok := cache.Load(typ); ok {
		return h.(string)
	}
	raw, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid,omitempty"`
		Typ string `json:"typ,omitempty"`
	}{alg, kid, typ})
	if err != nil {
		panic(fmt.Sprintf("marshal JWS header: %v", err)) // three strings always marshal
	}
	h, _ := cache.LoadOrStore(typ, base64.RawURLEncoding.EncodeToString(raw))
	return h.(string)
}

// Ring is an immutable snapshot of the key ring. Keys of one algorithm
// form a line ordered by creation: the newest key whose ActivatesAt has
// passed signs; newer keys are announced (published, not yet signing);
// older keys are retired and stay published for MaxTTL after retirement,
// the longest a token they signed can live. Revoked keys are left out.
type Ring struct {
	keys   []*Key // in line order within each algorithm
	maxTTL time.Duration

	// jwks is the document last built, read without a lock by every
	// request for it; mu only keeps two requests from building it at once.
	jwks atomic.Pointer[jwksDoc]
	mu   sync.Mutex
}

// jwksDoc is a built JWKS document, valid from from until until.
type jwksDoc struct {
	doc         []byte
	etag        string
	from, until time.Time
}

func (d *jwksDoc) validAt(now time.Time) bool {
	return d != nil && !now.Before(d.from) && now.Before(d.until)
}

// NewRing parses stored keys (as ListKeys returns them: grouped by
// algorithm, oldest first), opening sealed ones with vault. maxTTL is the
// longest lifetime of any token.
func NewRing(stored []*tokend.SigningKey, maxTTL time.Duration, vault *Vault) (*Ring, error) {
	r := &Ring{maxTTL: maxTTL}
	for i, sk := range stored {
		if !sk.RevokedAt.IsZero() {
			continue
		}
		signer, err := openSigner(sk, vault)
		if err != nil {
			return nil, err
		}
		k := &Key{ID: sk.ID, Alg: sk.Alg, Private: signer, Public: signer.Public(), ActivatesAt: sk.ActivatesAt}
		// Retired when the first later live key of the line activated.
		for _, later := range stored[i+1:] {
			if later.Alg == sk.Alg && later.RevokedAt.IsZero() {
				k.RetiredAt = later.ActivatesAt
				break
			}
		}
		r.keys = append(r.keys, k)
	}
	return r, nil
}

// Signing returns the key that signs alg at now, or an EUNAVAILABLE error
// if the line has none.
func (r *Ring) Signing(alg string, now time.Time) (*Key, error) {
	var cur *Key
	for _, k := range r.keys {
		if k.Alg == alg && !k.ActivatesAt.After(now) {
			cur = k
		}
	}
	if cur == nil {
		return nil, tokend.Errorf(tokend.EUNAVAILABLE, "no active %s signing key", alg)
	}
	return cur, nil
}

// Has reports whether the line of alg holds a key that signs or will sign.
func (r *Ring) Has(alg string) bool {
	for _, k := range r.keys {
		if k.Alg == alg {
			return true
		}
	}
	return false
}

// published reports whether k verifies and appears in the JWKS at now.
func (r *Ring) published(k *Key, now time.Time) bool {
	if k.RetiredAt.IsZero() || now.Before(k.RetiredAt) {
		return true
	}
	return now.Before(k.RetiredAt.Add(r.maxTTL))
}

// Verifying returns the key with this kid if tokens it signed may still be
// valid at now, else nil.
func (r *Ring) Verifying(kid string, now time.Time) *Key {
	for _, k := range r.keys {
		if k.ID == kid {
			if r.published(k, now) {
				return k
			}
			return nil
		}
	}
	return nil
}

// Keys returns every key of the ring, for listing.
func (r *Ring) Keys() []*Key { return r.keys }

// Status names where k stands at now: "announced", "active", "retired"
// (still published) or "expired".
func (r *Ring) Status(k *Key, now time.Time) string {
	switch {
	case k.ActivatesAt.After(now):
		return "announced"
	case k.RetiredAt.IsZero() || now.Before(k.RetiredAt):
		return "active"
	case r.published(k, now):
		return "retired"
	default:
		return "expired"
	}
}

// JWKS returns the JSON Web Key Set of the keys published at now, and its
// strong entity tag. The document is built once and reused until the set
// changes.
func (r *Ring) JWKS(now time.Time) (doc []byte, etag string) {
	if d := r.jwks.Load(); d.validAt(now) {
		return d.doc, d.etag
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.jwks.Load(); d.validAt(now) {
		return d.doc, d.etag
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	until := now.Add(time.Hour)
	for _, k := range r.keys {
		if !r.published(k, now) {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
		if !k.RetiredAt.IsZero() {
			// The set changes when this key leaves it.
			if end := k.RetiredAt.Add(r.maxTTL); end.Before(until) && end.After(now) {
				until = end
			}
		}
	}
	doc, err := json.Marshal(set)
	if err != nil {
		panic(fmt.Sprintf("marshal JWKS: %v", err)) // public keys always marshal
	}
	sum := sha256.Sum256(doc)
	d := &jwksDoc{doc: doc, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`, from: now, until: until}
	r.jwks.Store(d)
	return d.doc, d.etag
}

// openSigner opens a stored key's private part with vault (nil: stored in
// the clear) and parses it.
func openSigner(sk *tokend.SigningKey, vault *Vault) (crypto.Signer, error) {
	der, err := vault.Open(sk.ID, sk.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("open key %s: %w", sk.ID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse key %s: %w", sk.ID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("parse key %s: not a signing key", sk.ID)
	}
	return signer, nil
}
