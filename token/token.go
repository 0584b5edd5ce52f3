// Package token builds, signs and verifies tokend's JWTs (RFC 7519): the one
// claim set every token uses, signing with the key ring's current key, and
// verification that takes the allowed algorithms as a required argument.
package token

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
)

// JWS typ headers.
const (
	TypeAccess = "at+jwt" // RFC 9068 §2.1
	TypeJWT    = "JWT"
)

// Claims is the claim set of every token tokend issues: the registered
// claims, RFC 9068's access-token claims, and the claims the dialects add.
// Empty fields are left out of the token.
type Claims struct {
	Issuer    string       `json:"iss,omitempty"`
	Subject   string       `json:"sub,omitempty"`
	Audience  jwt.Audience `json:"aud,omitempty"`
	ExpiresAt int64        `json:"exp"`
	NotBefore int64        `json:"nbf,omitempty"`
	IssuedAt  int64        `json:"iat"`
	ID        string       `json:"jti"`
	ClientID  string       `json:"client_id,omitempty"`
	Scope     string       `json:"scope,omitempty"`
	SessionID string       `json:"sid,omitempty"`
	// Username is the user's login name (OpenID Connect's preferred_username).
	Username string   `json:"preferred_username,omitempty"`
	Roles    []string `json:"roles,omitempty"` // RFC 9068 §2.2.3.1

	// Dialect claims (shared/spec/dialects.md).
	Authorities []string  `json:"authorities,omitzero"`    // atoti: present (maybe []) in every Atoti token
	TokenType   string    `json:"token_type,omitempty"`    // simplejwt, taiki: "access" or "refresh"
	UserID      NumericID `json:"user_id,omitempty"`       // simplejwt: a number for an integer id
	ClientAppID string    `json:"client_app_id,omitempty"` // taiki
	TaikiUserID string    `json:"taiki_user_id,omitempty"` // taiki
	Mode        string    `json:"mode,omitempty"`          // taiki
	// Counter is the refresh generation carried by a JWT refresh token.
	Counter *int64 `json:"ctr,omitempty"`

	// Extra are further claims (a user's custom claims). They are written
	// after the others, and one whose name is Reserved is left out, so
	// that they can never replace a claim tokend sets. Verify does not
	// read them back.
	Extra map[string]any `json:"-"`
}

// reserved are the claim names custom claims may not use: the registered
// claims of RFC 7519 §4.1, those of RFC 9068 and OpenID Connect that an
// access token may carry, and every claim tokend or a dialect sets.
var reserved = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"client_id": true, "scope": true, "sid": true, "roles": true, "token_type": true, "typ": true,
	"username": true, "user_id": true, "authorities": true, "client_app_id": true, "azp": true,
	"auth_time": true, "acr": true, "amr": true, "cnf": true, "act": true, "may_act": true,
	"preferred_username": true, "taiki_user_id": true, "mode": true, "ctr": true,
}

// Reserved reports whether name is a claim that only tokend may set.
func Reserved(name string) bool { return reserved[name] }

// claimsJSON has Claims' fields without its methods, for MarshalJSON.
type claimsJSON Claims

// MarshalJSON writes the claims, then the Extra claims that are not
// Reserved, in the order of their names.
func (c *Claims) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal((*claimsJSON)(c))
	if err != nil || len(c.Extra) == 0 {
		return b, err
	}
	return appendExtra(b, c.Extra)
}

// appendExtra appends to the JSON object b the claims of extra that are
// not Reserved, in the order of their names.
func appendExtra(b []byte, extra map[string]any) ([]byte, error) {
	names := make([]string, 0, len(extra))
	for k := range extra {
		if !Reserved(k) {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return b, nil
	}
	slices.Sort(names)
	b = b[:len(b)-1] // the closing brace; the object always has exp, iat and jti
	for _, k := range names {
		name, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(extra[k])
		if err != nil {
			return nil, fmt.Errorf("marshal claim %s: %w", name, err)
		}
		b = append(append(append(append(b, ','), name...), ':'), v...)
	}
	return append(b, '}'), nil
}

// Expiry returns exp as a time.
func (c *Claims) Expiry() time.Time { return time.Unix(c.ExpiresAt, 0) }

// NewID returns a fresh jti: 128 random bits as 32 hex characters.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Key is a key that signs tokens: one of the ring (*keys.Key) or a
// dialect's symmetric key (*keys.Symmetric). Signing (jws.go) takes the
// encoded protected header from the key and signs by its type.
type Key interface {
	JWSHeader(typ string) string
}

// Sign signs c with k, setting the typ header to typ.
func Sign(k Key, typ string, c *Claims) (string, error) { return SignNamed(k, typ, c, nil) }

// SignNamed is Sign with the dialect claims that names renames written
// under their new names. It returns the compact JWS (jws.go): the claims
// as json.Marshal writes them (claimsjson.go).
func SignNamed(k Key, typ string, c *Claims, names ClaimNames) (string, error) {
	return signClaims(k, typ, c, names)
}

// MaxLen bounds the tokens Verify will parse at all. It leaves room for
// the largest token tokend issues: a user's 4 KiB of custom claims with
// the most roles, scopes and the longest name the admin API accepts
// (about 11 KiB with RS512), inside the server's 16 KiB of headers.
const MaxLen = 12 << 10

// Leeway is how far iat and nbf may lie in the future, for clocks that
// differ a little between nodes. Expiry gets no leeway.
const Leeway = 30 * time.Second

// Verifier checks tokens against a key ring.
type Verifier struct {
	Issuer   string
	Audience string
}

// Expectations name what a token must be to pass Verify. Algorithms is
// required: a token signed with any other algorithm (none, HS256 with the
// public key as secret, ...) is rejected before its signature is looked at.
type Expectations struct {
	Algorithms []string
	// Types lists acceptable typ headers; empty accepts any.
	Types []string
	// AllowExpired accepts a token past its exp (to revoke it, say).
	AllowExpired bool
	// Names are the dialect claims' names on the wire, when a dialect
	// renamed them (nil: tokend's own names).
	Names ClaimNames
}

var errInvalid = &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: "invalid token"}

func invalid(msg string) error { return &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: msg} }

// ErrExpired is Verify's error for a token past its exp: genuine but
// stale, unlike a forged or broken one (errors.Is tells them apart).
var ErrExpired = &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: "token expired"}

// Verify parses raw as a compact JWS, checks its algorithm, typ, kid,
// signature, issuer, audience and times at now, and returns its claims.
// Every failure is an EINVALIDTOKEN *tokend.Error. Headers such as jku, x5u
// and jwk are ignored: keys come only from the ring. Only the ring's
// asymmetric algorithms (keys.Algorithms) may be allowed here: an HMAC
// algorithm in exp.Algorithms is a programming error, refused before the
// token is read, so no symmetric verification can ever run on a ring key
// (algorithm confusion).
func (v *Verifier) Verify(ring *keys.Ring, raw string, exp Expectations, now time.Time) (*Claims, *keys.Key, error) {
	for _, a := range exp.Algorithms {
		if !keys.ValidAlg(a) {
			return nil, nil, fmt.Errorf("verify token: %q is not an algorithm of the key ring", a)
		}
	}
	jws, err := parse(raw, exp)
	if err != nil {
		return nil, nil, err
	}
	h := jws.Signatures[0].Header
	k := ring.Verifying(h.KeyID, now)
	if k == nil || string(k.Alg) != h.Algorithm {
		return nil, nil, errInvalid
	}
	payload, err := jws.Verify(k.Public)
	if err != nil {
		return nil, nil, errInvalid
	}
	c, err := v.claims(payload, exp, now)
	if err != nil {
		return nil, nil, err
	}
	return c, k, nil
}

// VerifySymmetric is Verify for a token signed with a dialect's symmetric
// key k, and only with it: exp.Algorithms must list HMAC algorithms only,
// k's among them, and the token's header must name k's algorithm and kid.
// The caller decides that k may be tried at all (the token reached k's
// dialect, or introspection); no ring key is ever tried here.
func (v *Verifier) VerifySymmetric(k *keys.Symmetric, raw string, exp Expectations, now time.Time) (*Claims, error) {
	for _, a := range exp.Algorithms {
		if !keys.IsSymmetric(a) {
			return nil, fmt.Errorf("verify token: %q is not a symmetric algorithm", a)
		}
	}
	if k == nil || !slices.Contains(exp.Algorithms, k.Alg) {
		return nil, fmt.Errorf("verify token: the key's algorithm is not among those allowed")
	}
	jws, err := parse(raw, exp)
	if err != nil {
		return nil, err
	}
	payload, err := k.Verify(jws)
	if err != nil {
		return nil, errInvalid
	}
	return v.claims(payload, exp, now)
}

// parse reads raw as a compact JWS with one signature whose algorithm is
// in exp.Algorithms and whose typ is in exp.Types; it refuses crit headers.
func parse(raw string, exp Expectations) (*jose.JSONWebSignature, error) {
	if len(exp.Algorithms) == 0 {
		return nil, fmt.Errorf("verify token: no allowed algorithms given")
	}
	if len(raw) == 0 || len(raw) > MaxLen {
		return nil, errInvalid
	}
	algs := make([]jose.SignatureAlgorithm, len(exp.Algorithms))
	for i, a := range exp.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errInvalid
	}
	h := jws.Signatures[0].Header
	if len(exp.Types) > 0 {
		typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
		if !slices.Contains(exp.Types, typ) {
			return nil, invalid("wrong token type")
		}
	}
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return nil, errInvalid
	}
	return jws, nil
}

// claims reads a verified payload (under exp.Names) and checks its
// issuer, audience and times at now.
func (v *Verifier) claims(payload []byte, exp Expectations, now time.Time) (*Claims, error) {
	var c Claims
	if err := c.unmarshal(payload, exp.Names); err != nil {
		return nil, errInvalid
	}
	if c.Issuer != v.Issuer || c.ID == "" {
		return nil, errInvalid
	}
	if v.Audience != "" && !c.Audience.Contains(v.Audience) {
		return nil, invalid("token is not for this audience")
	}
	if !exp.AllowExpired && now.Unix() >= c.ExpiresAt {
		return nil, ErrExpired
	}
	if c.NotBefore != 0 && now.Add(Leeway).Unix() < c.NotBefore {
		return nil, invalid("token not yet valid")
	}
	if now.Add(Leeway).Unix() < c.IssuedAt {
		return nil, invalid("token issued in the future")
	}
	return &c, nil
}

// HeaderAlg returns the alg and kid a compact JWS's header claims, without
// verifying anything: only for choosing which key to try, never to trust
// the token. ok is false when the header cannot be read.
func HeaderAlg(raw string) (alg, kid string, ok bool) {
	head, _, found := strings.Cut(raw, ".")
	if !found || len(head) > 1024 {
		return "", "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", "", false
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(b, &h) != nil {
		return "", "", false
	}
	return h.Alg, h.Kid, true
}
