package grant

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

var errBadLogin = &tokend.Error{Code: tokend.EINVALIDGRANT, Message: "invalid username or password"}

// CheckUser verifies a username and password and returns the user. An
// unknown user, a wrong password, a disabled user and a client app's end
// user all fail with the same EINVALIDGRANT after the same argon2id work,
// so neither the answer nor its timing tells which accounts exist. The
// attempt is reserved against the account's and the client IP's failure
// counters before any hashing (ETOOMANY when either refuses it), so the
// lockout and the per-IP limit hold however many guesses arrive at once.
// EUNAVAILABLE when too many hashes are already queued.
func (e *Engine) CheckUser(ctx context.Context, username, password string) (*tokend.User, error) {
	la, err := e.reserveLogin(ctx, e.accountKey(username))
	if err != nil {
		return nil, err
	}
	u, err := e.store.UserByName(ctx, username)
	if err != nil && tokend.ErrorCode(err) != tokend.ENOTFOUND {
		e.settleLogin(ctx, la, false)
		return nil, fmt.Errorf("check user: %w", err)
	}
	hash := ""
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := e.hasher.Check(ctx, password, hash)
	if err != nil {
		if tokend.ErrorCode(err) == tokend.EUNAVAILABLE || ctx.Err() != nil {
			e.settleLogin(ctx, la, false)
			return nil, err
		}
		// A stored hash we cannot read is our problem, not the caller's.
		e.log.Error("unreadable password hash", "user_id", u.ID, "err", err)
		e.settleLogin(ctx, la, false)
		return nil, errBadLogin
	}
	if !ok || u == nil || u.Disabled || u.ClientID != "" {
		e.loginFailed(ctx, la, u)
		return nil, errBadLogin
	}
	e.settleLogin(ctx, la, true)
	e.upgradeHash(ctx, u, password)
	return u, nil
}

// upgradeHash replaces a foreign or outdated password hash (an imported
// bcrypt or PBKDF2 hash, or argon2id below the current parameters) with an
// argon2id hash at the current parameters, now that the password is known
// to be right. A failure is logged and the login goes on: the old hash
// still works.
func (e *Engine) upgradeHash(ctx context.Context, u *tokend.User, password string) {
	if !secret.NeedsRehash(u.PasswordHash, e.hasher.Params) {
		return
	}
	hash, err := e.hasher.HashBounded(ctx, password)
	if err == nil {
		err = e.store.SetUserPassword(context.WithoutCancel(ctx), u.ID, hash)
	}
	if err != nil {
		e.log.Warn("upgrade password hash", "user_id", u.ID, "err", err)
		return
	}
	u.PasswordHash = hash
	e.audit(ctx, "password.rehashed", u.ID, "", "success", "")
}

// Password runs the resource owner password credentials grant (RFC 6749
// §4.3): it checks the user, opens a login session (unless the profile
// wants none) and issues an access token and a refresh token. client may be
// nil for a dialect whose login names no client.
func (e *Engine) Password(ctx context.Context, p *Profile, client *tokend.ClientApp, username, password, scope string) (*Issued, error) {
	if client != nil && !client.Allows(tokend.GrantPassword) {
		return nil, tokend.Errorf(tokend.EUNAUTHORIZEDCLIENT, "client is not allowed the password grant")
	}
	var allowed []string
	if client != nil {
		allowed = client.Scopes
	}
	granted, err := grantScope(scope, allowed)
	if err != nil {
		return nil, err
	}
	if username == "" || password == "" {
		return nil, errBadLogin
	}
	u, err := e.CheckUser(ctx, username, password)
	if err != nil {
		return nil, err
	}
	if granted, err = userScope(u, scope, granted); err != nil {
		return nil, err
	}
	return e.Login(ctx, p, client, u, granted)
}

// Login opens a session for a user whose credentials were already checked
// and issues its tokens. It records the login time.
func (e *Engine) Login(ctx context.Context, p *Profile, client *tokend.ClientApp, u *tokend.User, scope string) (*Issued, error) {
	now := e.now()
	out := &Issued{User: u, Client: client, Scope: scope}
	sid := ""
	if !p.NoSession {
		s := &tokend.Session{
			ID:        uuid.Must(uuid.NewV7()).String(),
			UserID:    u.ID,
			Scope:     scope,
			Dialect:   p.Dialect,
			RotatedAt: now,
			CreatedAt: now,
			ExpiresAt: now.Add(e.refreshTTL(p)),
		}
		if client != nil {
			s.ClientID = client.ID
		}
		if err := e.store.CreateSession(ctx, s); err != nil {
			return nil, fmt.Errorf("login: %w", err)
		}
		out.Session, sid = s, s.ID
		var err error
		if out.RefreshToken, err = e.issueRefresh(p, s, u); err != nil {
			return nil, err
		}
	}
	var err error
	if out.AccessToken, out.Claims, out.ExpiresIn, err = e.mint(p, u, client, scope, sid); err != nil {
		return nil, err
	}
	if err := e.store.TouchLogin(ctx, u.ID, now); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	e.countIssued(tokend.GrantPassword, p.Dialect)
	e.countActivity("login", p.Dialect)
	e.audit(ctx, "token.issued", u.ID, out.Claims.ClientID, "success", "grant=password jti="+out.Claims.ID)
	return out, nil
}

// ClientCredentials runs the client credentials grant (RFC 6749 §4.4): the
// client gets an access token for itself, with sub = client_id and no
// refresh token (§4.4.3). It writes nothing to the store.
func (e *Engine) ClientCredentials(ctx context.Context, p *Profile, client *tokend.ClientApp, scope string) (*Issued, error) {
	if client.Public || !client.Allows(tokend.GrantClientCredentials) {
		return nil, tokend.Errorf(tokend.EUNAUTHORIZEDCLIENT, "client is not allowed the client_credentials grant")
	}
	granted, err := grantScope(scope, client.Scopes)
	if err != nil {
		return nil, err
	}
	return e.IssueForClient(ctx, p, client, nil, granted)
}

// IssueForClient signs an access token for a client that was already
// authenticated and authorized, or for one of its end users (u non-nil).
func (e *Engine) IssueForClient(ctx context.Context, p *Profile, client *tokend.ClientApp, u *tokend.User, scope string) (*Issued, error) {
	raw, c, ttl, err := e.mint(p, u, client, scope, "")
	if err != nil {
		return nil, err
	}
	e.countIssued(tokend.GrantClientCredentials, p.Dialect)
	e.audit(ctx, "token.issued", c.Subject, client.ID, "success", "grant=client_credentials jti="+c.ID)
	return &Issued{AccessToken: raw, Claims: c, ExpiresIn: ttl, Scope: scope, Client: client, User: u}, nil
}
