package grant

import (
	"errors"
	"fmt"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/token"
)

// Symmetric signing. A dialect whose existing verifiers hold a shared
// secret (a Django service's simplejwt SIGNING_KEY, Taiki's HS256) may sign
// with an HMAC key of its own (Config.SymmetricKeys, Profile.Alg HS256).
// Whoever can verify with such a key can sign with it, so it is confined:
// it is not in the ring and never in the JWKS; tokens it signed are
// verified with it only at its dialect's own endpoints (trustFor) and by
// introspection and revocation, which pick the one key the token's header
// names (trustOf). Everywhere else (/userinfo, another dialect, the OAuth
// grants) only the ring's asymmetric algorithms are allowed, so such a
// token is refused before its signature is looked at, and no HMAC check is
// ever run with a ring key or with another dialect's key.

// ErrRevoked is in the chain of the error for a token that was revoked:
// the token itself, its session (logout, blacklist, reuse detection, a
// password change), or a refresh token's generation that rotation has
// moved past. A dialect that tells revoked tokens from invalid ones
// (simplejwt's "Token is blacklisted") tests for it with errors.Is.
var ErrRevoked = errors.New("token revoked")

// ErrNotRefreshToken is in the chain of the error for a genuine access
// token presented where a refresh token belongs (simplejwt's "Token has
// wrong type").
var ErrNotRefreshToken = errors.New("an access token where a refresh token belongs")

var (
	errRevokedToken   = &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: "invalid token", Err: ErrRevoked}
	errRevokedRefresh = &tokend.Error{Code: tokend.EINVALIDGRANT, Message: "invalid refresh token", Err: ErrRevoked}
	errWrongKindToken = &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: "invalid token", Err: ErrNotRefreshToken}
	errWrongKindGrant = &tokend.Error{Code: tokend.EINVALIDGRANT, Message: "invalid refresh token", Err: ErrNotRefreshToken}
)

// validateSymmetric checks Config.SymmetricKeys: each names its dialect
// and an HMAC algorithm, no dialect has two, and no two share a secret (a
// token of one would verify as the other's wherever kids are ignored, as
// Django's simplejwt ignores them).
func validateSymmetric(ks []*keys.Symmetric) []error {
	var errs []error
	for i, k := range ks {
		if k == nil || k.Owner == "" || !keys.IsSymmetric(k.Alg) {
			errs = append(errs, errors.New("a symmetric key needs its dialect and an HS256, HS384 or HS512 algorithm"))
			continue
		}
		for _, o := range ks[:i] {
			switch {
			case o == nil:
			case o.Owner == k.Owner:
				errs = append(errs, fmt.Errorf("two symmetric keys for %s", k.Owner))
			case o.SameSecret(k):
				errs = append(errs, fmt.Errorf("%s and %s have the same signing key: give each its own", o.Owner, k.Owner))
			}
		}
	}
	return errs
}

// symmetric returns dialect's symmetric key, or nil.
func (e *Engine) symmetric(dialect string) *keys.Symmetric {
	for _, k := range e.cfg.SymmetricKeys {
		if k.Owner == dialect {
			return k
		}
	}
	return nil
}

// trust names the keys one verification may use: the ring's (asymmetric
// algorithms only) always, and at most one symmetric key; and the names
// the token's dialect claims have on the wire.
type trust struct {
	sym   *keys.Symmetric
	names token.ClaimNames
}

// trustFor is what a token presented at p's endpoints is verified with:
// the ring, and p's own symmetric key if its dialect has one; claims read
// under p's names. A nil p (no front end) trusts the ring alone.
func (e *Engine) trustFor(p *Profile) trust {
	if p == nil {
		return trust{}
	}
	return trust{sym: e.symmetric(p.Dialect), names: p.ClaimNames}
}

// trustOf is what introspection and revocation verify raw with: the ring,
// and, when raw's header names an HMAC algorithm, the one configured key
// whose kid and algorithm it names (none else is tried).
func (e *Engine) trustOf(raw string) trust {
	alg, kid, ok := token.HeaderAlg(raw)
	if !ok || !keys.IsSymmetric(alg) {
		return trust{}
	}
	for _, k := range e.cfg.SymmetricKeys {
		if k.ID == kid && k.Alg == alg {
			return trust{sym: k}
		}
	}
	return trust{}
}

// verifyJWT verifies raw with v under tr. A token whose header names tr's
// symmetric algorithm is checked with that key alone (VerifySymmetric,
// its one algorithm); any other with the ring alone (keys.Algorithms). The
// header only chooses which check runs: each check allows its own
// algorithms and nothing else.
func (e *Engine) verifyJWT(v *token.Verifier, raw string, tr trust, types []string, allowExpired bool) (*token.Claims, error) {
	exp := token.Expectations{Types: types, AllowExpired: allowExpired, Names: tr.names}
	if tr.sym != nil {
		if alg, _, _ := token.HeaderAlg(raw); alg == tr.sym.Alg {
			exp.Algorithms = []string{tr.sym.Alg}
			return v.VerifySymmetric(tr.sym, raw, exp, e.now())
		}
	}
	exp.Algorithms = keys.Algorithms
	c, _, err := v.Verify(e.Ring(), raw, exp, e.now())
	return c, err
}

// accessNotRefresh reports whether raw, refused as a refresh token, is a
// genuine, unexpired JWT under tr whose token_type says "access" (as a
// dialect's access tokens do): the caller sent the wrong kind of token
// rather than a bad one.
func (e *Engine) accessNotRefresh(raw string, tr trust) bool {
	if LooksLikeRefreshToken(raw) {
		return false
	}
	c, err := e.verify(raw, tr, false)
	return err == nil && c.Counter == nil && c.TokenType == "access"
}
