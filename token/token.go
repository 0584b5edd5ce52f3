// Package token builds, signs and verifies tokend's JWTs (RFC 7519): the one
// claim set every token uses, signing with the key ring's current key, and
// verification that takes the allowed algorithms as a required argument.
package token

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
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
	Authorities []string `json:"authorities,omitzero"`    // atoti: present (maybe []) in every Atoti token
	TokenType   string   `json:"token_type,omitempty"`    // simplejwt, taiki: "access" or "refresh"
	UserID      string   `json:"user_id,omitempty"`       // simplejwt
	ClientAppID string   `json:"client_app_id,omitempty"` // taiki
	TaikiUserID string   `json:"taiki_user_id,omitempty"` // taiki
	Mode        string   `json:"mode,omitempty"`          // taiki
	// Counter is the refresh generation carried by a JWT refresh token.
	Counter *int64 `json:"ctr,omitempty"`
}

// Expiry returns exp as a time.
func (c *Claims) Expiry() time.Time { return time.Unix(c.ExpiresAt, 0) }

// NewID returns a fresh jti: 128 random bits as 32 hex characters.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Sign signs c with k, setting the typ header to typ, and returns the
// compact JWS (jws.go): the claims as json.Marshal writes them
// (claimsjson.go).
func Sign(k *keys.Key, typ string, c *Claims) (string, error) {
	return signClaims(k, typ, c)
}

// MaxLen bounds the tokens Verify will parse at all.
const MaxLen = 8192

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
}

var errInvalid = &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: "invalid token"}

func invalid(msg string) error { return &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: msg} }

// ErrExpired is Verify's error for a token past its exp: genuine but
// stale, unlike a forged or broken one (errors.Is tells them apart).
var ErrExpired = &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: "token expired"}

// Verify parses raw as a compact JWS, checks its algorithm, typ, kid,
// signature, issuer, audience and times at now, and returns its claims.
// Every failure is an EINVALIDTOKEN *tokend.Error. Headers such as jku, x5u
// and jwk are ignored: keys come only from the ring.
func (v *Verifier) Verify(ring *keys.Ring, raw string, exp Expectations, now time.Time) (*Claims, *keys.Key, error) {
	if len(exp.Algorithms) == 0 {
		return nil, nil, fmt.Errorf("verify token: no allowed algorithms given")
	}
	if len(raw) == 0 || len(raw) > MaxLen {
		return nil, nil, errInvalid
	}
	algs := make([]jose.SignatureAlgorithm, len(exp.Algorithms))
	for i, a := range exp.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, nil, errInvalid
	}
	h := jws.Signatures[0].Header
	if len(exp.Types) > 0 {
		typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
		if !slices.Contains(exp.Types, typ) {
			return nil, nil, invalid("wrong token type")
		}
	}
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return nil, nil, errInvalid
	}
	k := ring.Verifying(h.KeyID, now)
	if k == nil || string(k.Alg) != h.Algorithm {
		return nil, nil, errInvalid
	}
	payload, err := jws.Verify(k.Public)
	if err != nil {
		return nil, nil, errInvalid
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, nil, errInvalid
	}
	if c.Issuer != v.Issuer || c.ID == "" {
		return nil, nil, errInvalid
	}
	if v.Audience != "" && !c.Audience.Contains(v.Audience) {
		return nil, nil, invalid("token is not for this audience")
	}
	if !exp.AllowExpired && now.Unix() >= c.ExpiresAt {
		return nil, nil, ErrExpired
	}
	if c.NotBefore != 0 && now.Add(Leeway).Unix() < c.NotBefore {
		return nil, nil, invalid("token not yet valid")
	}
	if now.Add(Leeway).Unix() < c.IssuedAt {
		return nil, nil, invalid("token issued in the future")
	}
	return &c, k, nil
}
