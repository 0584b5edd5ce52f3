package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/tokend/tokend"
)

const sessionColumns = `id, user_id, client_id, scope, dialect, counter, rotated_at, created_at, expires_at, revoked_at, revoke_reason`

func (s *Store) CreateSession(ctx context.Context, se *tokend.Session) error {
	_, err := s.exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		se.ID, se.UserID, se.ClientID, se.Scope, se.Dialect, se.Counter, micro(se.RotatedAt),
		micro(se.CreatedAt), micro(se.ExpiresAt), micro(se.RevokedAt), se.RevokeReason)
	return wrap("create session", err)
}

func (s *Store) SessionByID(ctx context.Context, id string) (*tokend.Session, error) {
	var se tokend.Session
	var rotated, created, expires, revoked int64
	err := s.row(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id).Scan(
		&se.ID, &se.UserID, &se.ClientID, &se.Scope, &se.Dialect, &se.Counter, &rotated, &created, &expires, &revoked, &se.RevokeReason)
	if err != nil {
		return nil, wrap("session by id", err)
	}
	se.RotatedAt, se.CreatedAt, se.ExpiresAt, se.RevokedAt = fromMicro(rotated), fromMicro(created), fromMicro(expires), fromMicro(revoked)
	return &se, nil
}

func (s *Store) AdvanceSession(ctx context.Context, id string, from int64, at time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE sessions SET counter = counter + 1, rotated_at = ?
		WHERE id = ? AND counter = ? AND revoked_at = 0 AND expires_at > ?`, micro(at), id, from, micro(at))
	if err != nil {
		return false, wrap("advance session", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("advance session", err)
}

func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, reason string) error {
	return s.inTx(ctx, "revoke session", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at = 0`, micro(at), reason, id)
		if err != nil {
			return wrap("revoke session", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // already revoked, or unknown: revocation is idempotent
		}
		return recordChange(ctx, tx, tokend.ChangeSession, id)
	})
}
