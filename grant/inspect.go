package grant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/token"
)

var errInactive = &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: "invalid token"}

// accessTypes are the typ headers of tokend's access tokens: RFC 9068's,
// and the plain JWT of the dialects.
var accessTypes = []string{token.TypeAccess, token.TypeJWT}

// verify checks an access JWT's signature (with the keys tr allows),
// issuer, audience and times; it does not look at revocation.
func (e *Engine) verify(raw string, tr trust, allowExpired bool) (*token.Claims, error) {
	return e.verifyJWT(&e.verifier, raw, tr, accessTypes, allowExpired)
}

// CheckAccess verifies an access token that a caller presents as its own
// credential (userinfo, a dialect's bearer echo) and that it still stands:
// not revoked, its session (if any) live, its user or client enabled. It
// returns EINVALIDTOKEN for anything else, and internal errors as they are.
// A token cannot be guessed (a signature), so a bad one is counted in the
// metrics only: it never counts against, nor is refused by, the per-IP
// limit, which would let one broken service lock out every caller behind
// its address. Only the ring's keys verify here: a token signed with a
// dialect's symmetric key belongs to that dialect's endpoints
// (CheckTokenFor) and is refused everywhere else.
func (e *Engine) CheckAccess(ctx context.Context, raw string) (*token.Claims, error) {
	return e.checkAccessCounted(ctx, raw, trust{})
}

func (e *Engine) checkAccessCounted(ctx context.Context, raw string, tr trust) (*token.Claims, error) {
	c, err := e.checkAccess(ctx, raw, tr)
	if err != nil && tokend.ErrorCode(err) == tokend.EINVALIDTOKEN && !errors.Is(err, token.ErrExpired) && !errors.Is(err, errInactive) && !errors.Is(err, ErrRevoked) {
		e.countGuard("access_token")
	}
	return c, err
}

func (e *Engine) checkAccess(ctx context.Context, raw string, tr trust) (*token.Claims, error) {
	c, err := e.verify(raw, tr, false)
	if err != nil {
		return nil, err
	}
	if c.TokenType == "refresh" || c.Counter != nil {
		return nil, errInactive // a dialect's refresh JWT is no access token
	}
	// Revocations, clients and users come from memory, kept current by
	// the change feed (cache.go): no store read on this path.
	if e.tokenRevoked(c.ID) || (c.SessionID != "" && e.sessionRevoked(c.SessionID)) {
		return nil, errRevokedToken
	}
	if owner := owningClient(c); owner != "" {
		cl, err := e.client(ctx, owner)
		if err != nil && tokend.ErrorCode(err) != tokend.ENOTFOUND {
			return nil, fmt.Errorf("check access token: %w", err)
		}
		if cl == nil || cl.Disabled {
			return nil, errInactive
		}
	}
	if c.Subject != "" && c.Subject != c.ClientID {
		u, err := e.tokenUser(ctx, c)
		if err != nil {
			return nil, err
		}
		// A token issued before the user's password changed no longer
		// counts, session or not (users.go).
		switch {
		case u == nil:
			return nil, errInactive
		case u.Disabled || predates(u, c.IssuedAt):
			return nil, errRevokedToken // disabling and a password change end a user's tokens
		}
	}
	return c, nil
}

// owningClient names the client app a token was issued to: client_id, or
// the taiki dialect's client_app_id; "" for none.
func owningClient(c *token.Claims) string {
	if c.ClientID != "" {
		return c.ClientID
	}
	return c.ClientAppID
}

// TokenUser returns the user an access token speaks for, read by what
// the token kind's sub means (tokenUser), or nil for a client app's own
// token (client_credentials: sub is the client id) and for a user that no
// longer exists. Front ends that show a token's identity (/userinfo) call
// it instead of reading sub, whose meaning differs between kinds.
func (e *Engine) TokenUser(ctx context.Context, c *token.Claims) (*tokend.User, error) {
	if c.Subject == "" || c.Subject == c.ClientID {
		return nil, nil
	}
	return e.tokenUser(ctx, c)
}

// tokenUser finds the user a token speaks for, by what its kind's sub
// means. An Atoti token (the one kind that carries authorities) has the
// username in sub (shared/spec/dialects.md), so it is found by name among
// the users of no client; a simplejwt token names the user's id in
// user_id; every other kind (OAuth, OCM, taiki) has the user's id in sub.
// A sub is never tried both ways: a username may not look like an id
// (tokend.ValidUsername), and an Atoti sub is never looked up as one. It
// returns nil for a user that no longer exists.
func (e *Engine) tokenUser(ctx context.Context, c *token.Claims) (*tokend.User, error) {
	var u *tokend.User
	var err error
	switch {
	case c.Authorities != nil:
		u, err = e.store.UserByName(ctx, c.Subject)
	case c.UserID != "":
		u, err = e.user(ctx, string(c.UserID))
	default:
		u, err = e.user(ctx, c.Subject)
	}
	if err == nil && u == nil {
		return nil, nil
	}
	switch {
	case err == nil:
		return u, nil
	case tokend.ErrorCode(err) == tokend.ENOTFOUND:
		return nil, nil
	default:
		return nil, fmt.Errorf("check access token: %w", err)
	}
}

// CheckRefresh verifies a refresh token that a caller presents (a
// dialect's verify, blacklist or refresh) in any form (opaque, or a
// dialect's refresh JWT signed with a ring key), and that its session is
// live at its current generation and its user enabled. EINVALIDTOKEN
// otherwise. Like CheckAccess, it never counts against the per-IP limit (a
// refresh token is 256 bits of MAC or a signature: not guessable).
func (e *Engine) CheckRefresh(ctx context.Context, raw string) (*tokend.Session, error) {
	return e.CheckRefreshFor(ctx, nil, raw)
}

// CheckRefreshFor is CheckRefresh at the endpoints of p's front end (nil:
// none): a refresh JWT signed with p's symmetric key, if it has one, is
// verified too, and its claims are read under p's names. The error of a
// revoked or superseded token carries ErrRevoked; that of a genuine access
// token, ErrNotRefreshToken.
func (e *Engine) CheckRefreshFor(ctx context.Context, p *Profile, raw string) (*tokend.Session, error) {
	tr := e.trustFor(p)
	if _, _, ok := e.parseAnyRefresh(raw, true, tr); !ok {
		e.countGuard("refresh_token")
		if e.accessNotRefresh(raw, tr) {
			return nil, errWrongKindToken
		}
		return nil, errInactive
	}
	return e.checkRefresh(ctx, raw, tr)
}

// CheckToken verifies a token a caller presents that may be an access or
// a refresh token: it returns the access token's claims, or the refresh
// token's session. Failures are as CheckAccess's and CheckRefresh's.
func (e *Engine) CheckToken(ctx context.Context, raw string) (*token.Claims, *tokend.Session, error) {
	return e.CheckTokenFor(ctx, nil, raw)
}

// CheckTokenFor is CheckToken at the endpoints of p's front end
// (simplejwt's verify), with p's symmetric key and claim names as
// CheckRefreshFor has them.
func (e *Engine) CheckTokenFor(ctx context.Context, p *Profile, raw string) (*token.Claims, *tokend.Session, error) {
	tr := e.trustFor(p)
	if _, _, ok := e.parseAnyRefresh(raw, true, tr); ok {
		s, err := e.checkRefresh(ctx, raw, tr)
		return nil, s, err
	}
	c, err := e.checkAccessCounted(ctx, raw, tr)
	return c, nil, err
}

// checkRefresh is CheckRefresh without the metric, for introspection.
func (e *Engine) checkRefresh(ctx context.Context, raw string, tr trust) (*tokend.Session, error) {
	sid, counter, ok := e.parseAnyRefresh(raw, true, tr)
	if !ok {
		return nil, errInactive
	}
	s, err := e.store.SessionByID(ctx, sid)
	if err != nil {
		if tokend.ErrorCode(err) == tokend.ENOTFOUND {
			return nil, errInactive
		}
		return nil, fmt.Errorf("check refresh token: %w", err)
	}
	switch {
	case !s.RevokedAt.IsZero() || counter != s.Counter:
		return nil, errRevokedToken // revoked, or a generation rotated away
	case !s.Live(e.now()):
		return nil, errInactive
	}
	u, err := e.store.UserByID(ctx, s.UserID)
	if err != nil {
		if tokend.ErrorCode(err) == tokend.ENOTFOUND {
			return nil, errInactive
		}
		return nil, fmt.Errorf("check refresh token: %w", err)
	}
	if u.Disabled || sessionPredates(u, s) {
		return nil, errRevokedToken // disabling and a password change end a user's sessions
	}
	return s, nil
}

// Introspection is what RFC 7662 §2.2 returns about an active token.
type Introspection struct {
	TokenType string // "access_token" or "refresh_token"
	Claims    *token.Claims
	ExpiresAt time.Time
	// User is the user the token speaks for, nil for a client's own
	// token: report its id and name, never the token's sub, whose
	// meaning differs between token kinds (TokenUser).
	User *tokend.User
}

// Introspect tells client about a token (RFC 7662). It returns nil, nil for
// anything that is not an active token: invalid, expired, revoked, or a
// refresh token of another client (refresh tokens are shown only to the
// client that holds them). A token signed with a dialect's symmetric key
// is verified with the one key its header names (trustOf).
func (e *Engine) Introspect(ctx context.Context, client *tokend.ClientApp, raw string) (*Introspection, error) {
	tr := e.trustOf(raw)
	if LooksLikeRefreshToken(raw) {
		return e.introspectRefresh(ctx, client, raw, tr)
	}
	// A refresh JWT has typ JWT (so has one a dialect signs with its
	// shared key): an RFC 9068 access token is not parsed twice to learn
	// it is none.
	if token.MayHaveType(raw, token.TypeJWT) {
		if c, err := e.verifyRefreshJWT(raw, tr); err == nil && c != nil {
			return e.introspectRefresh(ctx, client, raw, tr)
		}
	}
	c, err := e.checkAccess(ctx, raw, tr)
	if err != nil {
		if tokend.ErrorCode(err) == tokend.EINVALIDTOKEN {
			return nil, nil
		}
		return nil, err
	}
	u, err := e.TokenUser(ctx, c)
	if err != nil {
		return nil, err
	}
	if u == nil && c.Subject != c.ClientID {
		return nil, nil // its user went away since the check
	}
	return &Introspection{TokenType: "access_token", Claims: c, ExpiresAt: c.Expiry(), User: u}, nil
}

func (e *Engine) introspectRefresh(ctx context.Context, client *tokend.ClientApp, raw string, tr trust) (*Introspection, error) {
	s, err := e.checkRefresh(ctx, raw, tr)
	if err != nil {
		if tokend.ErrorCode(err) == tokend.EINVALIDTOKEN {
			return nil, nil
		}
		return nil, err
	}
	// A session of a client is shown only to that client; one of no client
	// (a dialect login) to any authenticated client, as its revocation is.
	if s.ClientID != "" && s.ClientID != client.ID {
		return nil, nil
	}
	u, err := e.store.UserByID(ctx, s.UserID)
	if err != nil {
		return nil, err
	}
	return &Introspection{
		TokenType: "refresh_token",
		Claims: &token.Claims{
			Issuer: e.cfg.Issuer, Subject: u.ID, Username: u.Username, ClientID: s.ClientID,
			Scope: s.Scope, SessionID: s.ID, IssuedAt: s.RotatedAt.Unix(), ExpiresAt: s.ExpiresAt.Unix(),
		},
		ExpiresAt: s.ExpiresAt,
		User:      u,
	}, nil
}

// Revoke revokes a token for client (RFC 7009 §2.1). Revoking a refresh
// token ends its session, and with it the session's access tokens;
// revoking an access token denies that token until it expires. A token
// issued to another client is refused with EUNAUTHORIZEDCLIENT; a token
// issued to no client may be revoked by any authenticated client. Unknown,
// invalid and expired tokens need nothing and succeed (§2.2). Like
// introspection, it verifies a dialect's symmetric-key token with the one
// key its header names: revoking only ever takes power away.
func (e *Engine) Revoke(ctx context.Context, client *tokend.ClientApp, raw string) error {
	now := e.now()
	tr := e.trustOf(raw)
	if LooksLikeRefreshToken(raw) {
		sid, _, ok := e.parseRefreshToken(raw)
		if !ok {
			return nil
		}
		return e.RevokeSession(ctx, client, sid)
	}
	if c, err := e.verifyRefreshJWT(raw, tr); err == nil {
		// A refresh JWT (its own audience: no access check passes it).
		return e.RevokeSession(ctx, client, c.SessionID)
	}
	c, err := e.verify(raw, tr, true)
	if err != nil || !now.Before(c.Expiry()) {
		return nil
	}
	if owner := owningClient(c); owner != "" && (client == nil || owner != client.ID) {
		return tokend.Errorf(tokend.EUNAUTHORIZEDCLIENT, "token was issued to another client")
	}
	if c.TokenType == "refresh" && c.SessionID != "" {
		return e.RevokeSession(ctx, client, c.SessionID)
	}
	if err := e.store.RevokeToken(ctx, c.ID, c.Expiry()); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	e.markTokenRevoked(c.ID)
	e.audit(ctx, "token.revoked", c.Subject, owningClient(c), "success", "jti="+c.ID)
	return nil
}

// RevokeSession ends the session sid on behalf of client (nil: a dialect
// with no client), if the session belongs to it or to no client.
func (e *Engine) RevokeSession(ctx context.Context, client *tokend.ClientApp, sid string) error {
	s, err := e.store.SessionByID(ctx, sid)
	if err != nil {
		if tokend.ErrorCode(err) == tokend.ENOTFOUND {
			return nil
		}
		return fmt.Errorf("revoke session: %w", err)
	}
	if s.ClientID != "" && (client == nil || s.ClientID != client.ID) {
		return tokend.Errorf(tokend.EUNAUTHORIZEDCLIENT, "token was issued to another client")
	}
	if err := e.store.RevokeSession(ctx, sid, e.now(), "revoked"); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	e.markSessionRevoked(sid)
	e.audit(ctx, "session.revoked", s.UserID, s.ClientID, "success", "session="+sid)
	return nil
}
