package grant

import (
	"context"
	"fmt"

	"github.com/tokend/tokend"
)

// UserSessions returns a page of a user's live sessions, ordered by id,
// after the session id after ("" for the first page). ENOTFOUND if there
// is no such user.
func (m *Manager) UserSessions(ctx context.Context, userID, after string, limit int) ([]*tokend.Session, error) {
	if _, err := m.User(ctx, userID); err != nil {
		return nil, err
	}
	return m.Store.FindSessions(ctx, tokend.SessionQuery{UserID: userID, Live: m.now(), After: after, Limit: limit})
}

// Sessions returns a page of everyone's live sessions, ordered by id.
func (m *Manager) Sessions(ctx context.Context, after string, limit int) ([]*tokend.Session, error) {
	return m.Store.FindSessions(ctx, tokend.SessionQuery{Live: m.now(), After: after, Limit: limit})
}

// RevokeSession ends a session: its refresh token and the access tokens
// issued in it stop working at once. Revoking an ended session again is
// no error; ENOTFOUND if there is no such session.
func (m *Manager) RevokeSession(ctx context.Context, id string) error {
	s, err := m.Store.SessionByID(ctx, id)
	if tokend.ErrorCode(err) == tokend.ENOTFOUND {
		return tokend.Errorf(tokend.ENOTFOUND, "no session %q", safeText(id))
	}
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if !s.RevokedAt.IsZero() {
		return nil
	}
	if err := m.Store.RevokeSession(ctx, id, m.now(), "revoked by an administrator"); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return m.done(ctx, "session.revoked", s.UserID, s.ClientID, "session="+s.ID)
}

// Audit returns a page of the audit trail (tokend.Store's FindAudit).
// EINVALID if until is not after since.
func (m *Manager) Audit(ctx context.Context, q tokend.AuditQuery) ([]tokend.AuditEvent, error) {
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return nil, tokend.Invalid([]tokend.FieldError{fieldErr("until", "must be after since")})
	}
	return m.Store.FindAudit(ctx, q)
}
