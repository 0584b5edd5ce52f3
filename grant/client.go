package grant

import (
	"context"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

var errBadClient = &tokend.Error{Code: tokend.EINVALIDCLIENT, Message: "client authentication failed"}

// AuthenticateClient checks a client's credentials (RFC 6749 §2.3). A public
// client names only its id, and only where allowPublic (the password and
// refresh_token grants); a confidential client must present its current
// secret, or its previous one within the rotation overlap. Every failure
// is the same EINVALIDCLIENT, and an unknown id costs the same as a wrong secret.
func (e *Engine) AuthenticateClient(ctx context.Context, id, secretText string, allowPublic bool) (*tokend.ClientApp, error) {
	if id == "" {
		return nil, &tokend.Error{Code: tokend.EINVALIDCLIENT, Message: "client authentication required"}
	}
	// The per-IP limit refuses secret checks, but never a request whose
	// purpose is to present a token (PresentingToken): a wrong secret
	// there still counts.
	if secretText != "" && !presentingToken(ctx) {
		if err := e.checkIP(ctx); err != nil {
			return nil, err
		}
	}
	c, err := e.client(ctx, id)
	if err != nil {
		if tokend.ErrorCode(err) == tokend.ENOTFOUND {
			secret.CheckClientSecret(e.pepper, secretText, nil)
			e.clientFailed(ctx, "")
			return nil, errBadClient
		}
		return nil, err
	}
	if c.Public {
		if secretText != "" || !allowPublic || c.Disabled {
			e.clientFailed(ctx, c.ID)
			return nil, errBadClient
		}
		return c, nil
	}
	ok := secret.CheckClientSecret(e.pepper, secretText, c.SecretHash)
	if !ok && len(c.PrevSecretHash) > 0 && e.now().Before(c.PrevSecretUntil) {
		ok = secret.CheckClientSecret(e.pepper, secretText, c.PrevSecretHash)
	}
	if !ok || c.Disabled {
		e.clientFailed(ctx, c.ID)
		return nil, errBadClient
	}
	return c, nil
}

// RefuseClient refuses client credentials that a front end rejected by
// their form alone, counting the failure like a wrong secret: it returns
// EINVALIDCLIENT, or ETOOMANY if the caller's IP is over its limit.
func (e *Engine) RefuseClient(ctx context.Context) error {
	if err := e.checkIP(ctx); err != nil {
		return err
	}
	e.clientFailed(ctx, "")
	return errBadClient
}

// clientFailed records a failed client authentication.
func (e *Engine) clientFailed(ctx context.Context, clientID string) {
	e.audit(ctx, "client.auth_failed", clientID, clientID, "failure", "")
	e.secretFailed(ctx, "client")
}

// HashClientSecret hashes a client secret with this install's pepper.
func (e *Engine) HashClientSecret(s string) []byte { return secret.ClientSecretHash(e.pepper, s) }

// NewClientSecret generates a secret for a client and returns it with its hash.
func NewClientSecret(ctx context.Context, store tokend.Store) (string, []byte, error) {
	pepper, err := store.Secret(ctx, "client_secret_pepper", secret.NewKey)
	if err != nil {
		return "", nil, err
	}
	s := secret.NewClientSecret()
	return s, secret.ClientSecretHash(pepper, s), nil
}

// RotateClientSecret gives a client a new secret and returns it; the old
// one keeps working for overlap (0: stops at once).
func RotateClientSecret(ctx context.Context, store tokend.Store, id string, overlap time.Duration, now time.Time) (string, error) {
	if _, err := store.ClientByID(ctx, id); err != nil {
		return "", err
	}
	s, hash, err := NewClientSecret(ctx, store)
	if err != nil {
		return "", err
	}
	var until time.Time
	if overlap > 0 {
		until = now.Add(overlap)
	}
	return s, store.SetClientSecret(ctx, id, hash, until)
}

// ValidScopeToken reports whether s is a scope-token of RFC 6749 §3.3.
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// grantScope resolves a requested scope against what is allowed (RFC 6749
// §3.3): an empty request gets everything allowed; otherwise every requested
// scope must be allowed, else EINVALIDSCOPE. The result is in request order
// without duplicates.
func grantScope(requested string, allowed []string) (string, error) {
	if strings.TrimSpace(requested) == "" {
		return strings.Join(allowed, " "), nil
	}
	var out []string
	seen := map[string]bool{}
	for _, s := range strings.Split(requested, " ") {
		if s == "" {
			continue
		}
		if !ValidScopeToken(s) {
			return "", tokend.Errorf(tokend.EINVALIDSCOPE, "malformed scope")
		}
		ok := false
		for _, a := range allowed {
			if a == s {
				ok = true
				break
			}
		}
		if !ok {
			return "", tokend.Errorf(tokend.EINVALIDSCOPE, "scope %q is not allowed for this client", s)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return strings.Join(out, " "), nil
}

type presentingKey struct{}

// PresentingToken marks ctx as a request that presents a token
// (introspection, revocation, the refresh grant): the per-IP limit never
// refuses it, even when it also authenticates a client with a secret
// (SECURITY.md: the per-IP rule). A wrong secret in it still counts.
func PresentingToken(ctx context.Context) context.Context {
	return context.WithValue(ctx, presentingKey{}, true)
}

func presentingToken(ctx context.Context) bool {
	v, _ := ctx.Value(presentingKey{}).(bool)
	return v
}
