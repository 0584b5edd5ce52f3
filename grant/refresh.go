package grant

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/token"
)

// Refresh tokens are opaque strings derived from the session and its
// counter: "rt1_" + base64url(session id (16 bytes) | counter (8 bytes) |
// HMAC-SHA-256 of both under the install's refresh key). Nothing about the
// token is stored; the session row holds only the current counter, so
// "return the current token" needs no stored token and the table does not
// grow with every refresh (the design of Supabase Auth's second-generation
// refresh tokens).
const refreshPrefix = "rt1_"

const refreshBodyLen = 16 + 8 + sha256.Size

func (e *Engine) refreshMAC(sid []byte, counter uint64) []byte {
	m := hmac.New(sha256.New, e.refreshKey)
	m.Write([]byte(refreshPrefix))
	m.Write(sid)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], counter)
	m.Write(c[:])
	return m.Sum(nil)
}

func (e *Engine) refreshToken(sessionID string, counter int64) string {
	id := uuid.MustParse(sessionID)
	b := make([]byte, 0, refreshBodyLen)
	b = append(b, id[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(counter))
	b = append(b, e.refreshMAC(id[:], uint64(counter))...)
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// LooksLikeRefreshToken tells a refresh token from a JWT by its prefix.
func LooksLikeRefreshToken(raw string) bool { return strings.HasPrefix(raw, refreshPrefix) }

// refreshTokenLen is the length of every refresh token.
var refreshTokenLen = len(refreshPrefix) + base64.RawURLEncoding.EncodedLen(refreshBodyLen)

// parseRefreshToken returns the session id and counter of a refresh token
// whose MAC is right, and ok=false for anything else. A token has one
// spelling: Go's base64 decoders skip CR and LF and ignore the unused bits
// of the last character, so a token with a newline appended or inserted, or
// with another last character, would decode to the same bytes; only the
// exact canonical encoding of what was decoded is accepted.
func (e *Engine) parseRefreshToken(raw string) (sid string, counter int64, ok bool) {
	if !LooksLikeRefreshToken(raw) || len(raw) != refreshTokenLen {
		return "", 0, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(raw[len(refreshPrefix):])
	if err != nil || len(b) != refreshBodyLen || refreshPrefix+base64.RawURLEncoding.EncodeToString(b) != raw {
		return "", 0, false
	}
	ctr := binary.BigEndian.Uint64(b[16:24])
	if !hmac.Equal(b[24:], e.refreshMAC(b[:16], ctr)) || ctr > 1<<62 {
		return "", 0, false
	}
	id, err := uuid.FromBytes(b[:16])
	if err != nil {
		return "", 0, false
	}
	return id.String(), int64(ctr), true
}

var errBadRefresh = &tokend.Error{Code: tokend.EINVALIDGRANT, Message: "invalid refresh token"}

// Refresh runs the refresh token grant (RFC 6749 §6) for client (nil for a
// dialect whose sessions name no client). The token must belong to the
// client, its session must be live and its user enabled; scope may narrow
// the session's scope. See RefreshSession for rotation.
func (e *Engine) Refresh(ctx context.Context, p *Profile, client *tokend.ClientApp, raw, scope string) (*Issued, error) {
	if client != nil && !client.Allows(tokend.GrantRefreshToken) {
		return nil, tokend.Errorf(tokend.EUNAUTHORIZEDCLIENT, "client is not allowed the refresh_token grant")
	}
	tr := e.trustFor(p)
	sid, counter, ok := e.parseAnyRefresh(raw, p.RefreshJWT, tr)
	if !ok {
		e.countGuard("refresh_token")
		if p.RefreshJWT && e.accessNotRefresh(raw, tr) {
			return nil, errWrongKindGrant
		}
		return nil, errBadRefresh
	}
	return e.RefreshSession(ctx, p, client, sid, counter, scope)
}

// parseAnyRefresh reads an opaque refresh token, or a refresh JWT (signed
// with a key tr allows) if allowJWT, and returns its session and
// generation.
func (e *Engine) parseAnyRefresh(raw string, allowJWT bool, tr trust) (sid string, counter int64, ok bool) {
	if LooksLikeRefreshToken(raw) {
		return e.parseRefreshToken(raw)
	}
	if !allowJWT {
		return "", 0, false
	}
	c, err := e.verifyRefreshJWT(raw, tr)
	if err != nil {
		return "", 0, false
	}
	return c.SessionID, *c.Counter, true
}

// verifyRefreshJWT checks a refresh JWT's signature (with the keys tr
// allows), issuer, times and audience, which must be RefreshAudience: an
// access token (whose audience is the access audience) is no refresh
// token, and a refresh JWT passes no access check. Its session and
// counter say what it is; its token_type, read under a dialect's own name
// only where the dialect is known, must not say otherwise.
func (e *Engine) verifyRefreshJWT(raw string, tr trust) (*token.Claims, error) {
	v := token.Verifier{Issuer: e.cfg.Issuer, Audience: RefreshAudience(e.cfg.Issuer)}
	c, err := e.verifyJWT(&v, raw, tr, []string{token.TypeJWT}, false)
	if err != nil {
		return nil, err
	}
	if (c.TokenType != "" && c.TokenType != "refresh") || c.SessionID == "" || c.Counter == nil {
		return nil, errInactive
	}
	return c, nil
}

// RefreshSession refreshes the session sid from a refresh token of
// generation counter. With rotation on, the current generation moves the
// session on by one (a compare-and-swap in the store, so exactly one of
// many concurrent requests does it) and returns the next token; the
// previous generation, presented within the grace window, gets the current
// token instead of failing; anything older, or the previous one after the
// window, is taken as a stolen token and revokes the whole session.
func (e *Engine) RefreshSession(ctx context.Context, p *Profile, client *tokend.ClientApp, sid string, counter int64, scope string) (*Issued, error) {
	clientID := ""
	if client != nil {
		clientID = client.ID
	}
	// One store step reads the session and its user, rotates and records
	// the refresh time, when the checks below will pass (tokend.RefreshStep).
	step := tokend.RefreshStep{
		SessionID: sid, Counter: counter, ClientID: clientID, Dialect: p.Dialect, Scopes: scopeTokens(scope),
		Rotate: p.Rotate, Grace: e.cfg.RefreshGrace, At: e.now(),
	}
	st, err := e.store.StepRefresh(ctx, step)
	if err != nil {
		if tokend.ErrorCode(err) == tokend.ENOTFOUND {
			return nil, errBadRefresh
		}
		return nil, fmt.Errorf("refresh: %w", err)
	}
	s := st.Session
	if s.ClientID != clientID || s.Dialect != p.Dialect {
		return nil, &tokend.Error{Code: tokend.EINVALIDGRANT, Message: "refresh token was issued to another client"}
	}
	granted := s.Scope
	if scope != "" {
		if granted, err = grantScope(scope, strings.Fields(s.Scope)); err != nil {
			return nil, err
		}
	}
	u := st.User
	if err := refreshable(s, u); err != nil {
		return nil, err
	}
	next := counter
	for attempt := 0; ; attempt++ {
		now := step.At
		switch {
		case !s.RevokedAt.IsZero():
			return nil, errRevokedRefresh // revoked by a concurrent request
		case !s.Live(now):
			return nil, errBadRefresh
		}
		switch {
		case !p.Rotate && counter == s.Counter:
			// Rotation off: the same token keeps working.
		case counter == s.Counter:
			if !st.Advanced {
				if attempt >= 2 {
					return nil, tokend.Errorf(tokend.EUNAVAILABLE, "refresh contention, retry")
				}
				// Another request rotated first: look again.
				step.At = e.now()
				if st, err = e.store.StepRefresh(ctx, step); err != nil {
					return nil, fmt.Errorf("refresh: %w", err)
				}
				s, u = st.Session, st.User
				if err := refreshable(s, u); err != nil {
					return nil, err
				}
				continue
			}
			next = counter + 1
		case counter == s.Counter-1 && e.cfg.RefreshGrace > 0 && now.Sub(s.RotatedAt) <= e.cfg.RefreshGrace:
			next = s.Counter // within the grace window: the current token
		default:
			if err := e.store.RevokeSession(ctx, s.ID, now, "refresh token reuse"); err != nil {
				return nil, fmt.Errorf("refresh: revoke reused session: %w", err)
			}
			e.markSessionRevoked(s.ID)
			e.log.Warn("refresh token reuse detected; session revoked", "session_id", s.ID, "user_id", s.UserID, "client_id", s.ClientID, "dialect", p.Dialect)
			if e.metrics != nil {
				e.metrics.Failures.WithLabelValues(p.Dialect, "refresh_reuse").Inc()
			}
			e.audit(ctx, "refresh.reuse_detected", s.UserID, s.ClientID, "denied", "session="+s.ID)
			return nil, errRevokedRefresh
		}
		break
	}
	raw, c, ttl, err := e.mint(p, u, client, granted, s.ID)
	if err != nil {
		return nil, err
	}
	s.Counter = next
	refresh, err := e.issueRefresh(p, s, u)
	if err != nil {
		return nil, err
	}
	e.countIssued(tokend.GrantRefreshToken, p.Dialect)
	e.countActivity("refresh", p.Dialect)
	e.audit(ctx, "token.refreshed", u.ID, s.ClientID, "success", "session="+s.ID+" jti="+c.ID)
	return &Issued{
		AccessToken: raw, Claims: c, ExpiresIn: ttl,
		RefreshToken: refresh,
		Scope:        granted, User: u, Client: client, Session: s,
	}, nil
}

// refreshable refuses a refresh of session s of user u (nil if gone) that
// the user's state forbids: a user gone, or a session revoked, of a
// disabled user, or begun before the user's credentials changed
// (TokensNotBefore).
func refreshable(s *tokend.Session, u *tokend.User) error {
	switch {
	case u == nil:
		return errBadRefresh
	case !s.RevokedAt.IsZero() || u.Disabled || sessionPredates(u, s):
		return errRevokedRefresh
	}
	return nil
}
