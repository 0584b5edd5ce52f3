package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend"
)

const sessionColumns = `id, user_id, client_id, scope, dialect, counter, rotated_at, created_at, expires_at, revoked_at, revoke_reason`

func scanSession(row scanner) (*tokend.Session, error) {
	var se tokend.Session
	var revoked pgtype.Timestamptz
	if err := row.Scan(&se.ID, &se.UserID, &se.ClientID, &se.Scope, &se.Dialect, &se.Counter,
		&se.RotatedAt, &se.CreatedAt, &se.ExpiresAt, &revoked, &se.RevokeReason); err != nil {
		return nil, err
	}
	se.RotatedAt, se.CreatedAt, se.ExpiresAt = se.RotatedAt.UTC(), se.CreatedAt.UTC(), se.ExpiresAt.UTC()
	se.RevokedAt = fromOpt(revoked)
	return &se, nil
}

func (s *Store) CreateSession(ctx context.Context, se *tokend.Session) error {
	_, err := s.exec(ctx, "create session", `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		se.ID, se.UserID, se.ClientID, se.Scope, se.Dialect, se.Counter, se.RotatedAt,
		se.CreatedAt, se.ExpiresAt, optTime(se.RevokedAt), se.RevokeReason)
	return err
}

func (s *Store) SessionByID(ctx context.Context, id string) (*tokend.Session, error) {
	if unstorable(id) {
		return nil, notFound("session by id")
	}
	return one(ctx, s, "session by id", scanSession, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id)
}

// AdvanceSession is one conditional UPDATE, never a SELECT ... FOR UPDATE
// and a write: concurrent refreshes of one session each wait only for the
// row lock of the single statement before them, and each re-checks the
// counter once it has the row, so exactly one of them moves it.
func (s *Store) AdvanceSession(ctx context.Context, id string, from int64, at time.Time) (bool, error) {
	if unstorable(id) {
		return false, nil
	}
	n, err := s.exec(ctx, "advance session", `UPDATE sessions SET counter = counter + 1, rotated_at = $1
		WHERE id = $2 AND counter = $3 AND revoked_at IS NULL AND expires_at > $1`, at, id, from)
	return n == 1, err
}

// RevokeSession is idempotent: an unknown or already revoked session is no
// error, and keeps its first revocation.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, reason string) error {
	if unstorable(id) {
		return nil
	}
	return s.inTx(ctx, "revoke session", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoke_reason = $2 WHERE id = $3 AND revoked_at IS NULL`,
			optTime(at), reason, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		return s.recordChanges(ctx, tx, tokend.Change{Kind: tokend.ChangeSession, Ref: id})
	})
}
