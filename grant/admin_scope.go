package grant

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/token"
)

// The admin API's scopes, and the role that lets a user ask for them.
const (
	ScopeAdmin     = "tokend.admin"      // everything
	ScopeAdminRead = "tokend.admin.read" // reading only
	RoleAdmin      = "tokend.admin"
)

// AdminScope reports whether s is one of the admin API's scopes.
func AdminScope(s string) bool { return s == ScopeAdmin || s == ScopeAdminRead }

// userScope applies the admin scopes' rule to the scope that the password
// grant resolved (granted) for user u from the request's scope
// (requested): a user gets an admin scope only by naming it in the
// request and holding the role RoleAdmin. A request that leaves the scope
// out gets none, even when the client's scopes include one; a request
// that names one for a user without the role is refused (EINVALIDSCOPE).
func userScope(u *tokend.User, requested, granted string) (string, error) {
	asked := strings.Fields(requested)
	var out []string
	for _, s := range strings.Fields(granted) {
		if AdminScope(s) {
			if !slices.Contains(asked, s) {
				continue
			}
			if !slices.Contains(u.Roles, RoleAdmin) {
				return "", tokend.Errorf(tokend.EINVALIDSCOPE, "scope %q needs the role %s", s, RoleAdmin)
			}
		}
		out = append(out, s)
	}
	return strings.Join(out, " "), nil
}

// AdminScopes returns the admin scopes that the holder of an access token
// (already checked with CheckAccess) holds now: those of its scope claim
// that its client app still allows and, for a user's token, only while
// the user still has the role RoleAdmin. A scope taken away thus stops
// working at once, not when the tokens that carry it expire.
func (e *Engine) AdminScopes(ctx context.Context, c *token.Claims) ([]string, error) {
	var held []string
	for _, s := range strings.Fields(c.Scope) {
		if AdminScope(s) && !slices.Contains(held, s) {
			held = append(held, s)
		}
	}
	if len(held) == 0 {
		return nil, nil
	}
	if c.ClientID != "" {
		cl, err := e.client(ctx, c.ClientID)
		if tokend.ErrorCode(err) == tokend.ENOTFOUND {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("admin scopes: %w", err)
		}
		held = slices.DeleteFunc(held, func(s string) bool { return !slices.Contains(cl.Scopes, s) })
	}
	if c.Subject != c.ClientID {
		u, err := e.tokenUser(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("admin scopes: %w", err)
		}
		if u == nil || !slices.Contains(u.Roles, RoleAdmin) {
			return nil, nil
		}
	}
	return held, nil
}
