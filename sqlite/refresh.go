package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/tokend/tokend"
)

// The statements of StepRefresh.
const (
	stepSession = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = ?`
	stepUser    = `SELECT ` + userColumns + ` FROM users WHERE id = ?`
	stepAdvance = `UPDATE sessions SET counter = counter + 1, rotated_at = ? WHERE id = ?`
	stepTouch   = `UPDATE users SET last_refresh_at = ? WHERE id = ?`
)

// StepRefresh runs the whole refresh step in one immediate transaction on
// the one writer connection: the session and user are read, and the
// counter and last-refresh time written, with no other write in between,
// so exactly one of concurrent steps with the same counter advances it.
func (s *Store) StepRefresh(ctx context.Context, r tokend.RefreshStep) (*tokend.RefreshResult, error) {
	const op = "refresh step"
	// Prepared on the writer before the transaction takes its one
	// connection; in the transaction they are only bound to it.
	var stmts [4]*sql.Stmt
	for i, q := range []string{stepSession, stepUser, stepAdvance, stepTouch} {
		st, err := prepared(ctx, s.w, &s.wStmts, q)
		if err != nil {
			return nil, wrap(op, err)
		}
		stmts[i] = st
	}
	var out tokend.RefreshResult
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		var se tokend.Session
		var rotated, created, expires, revoked int64
		err := tx.StmtContext(ctx, stmts[0]).QueryRowContext(ctx, r.SessionID).Scan(
			&se.ID, &se.UserID, &se.ClientID, &se.Scope, &se.Dialect, &se.Counter, &rotated, &created, &expires, &revoked, &se.RevokeReason)
		if err != nil {
			return wrap(op, err)
		}
		se.RotatedAt, se.CreatedAt, se.ExpiresAt, se.RevokedAt = fromMicro(rotated), fromMicro(created), fromMicro(expires), fromMicro(revoked)
		out.Session = &se
		u, err := scanUser(tx.StmtContext(ctx, stmts[1]).QueryRowContext(ctx, se.UserID))
		switch {
		case err == nil:
			out.User = u
		case !errors.Is(err, sql.ErrNoRows):
			return wrap(op, err)
		}
		advance, touch := r.Decide(&se, out.User)
		if advance {
			// The read above and this write are in one write transaction:
			// the counter cannot have moved in between.
			if _, err := tx.StmtContext(ctx, stmts[2]).ExecContext(ctx, micro(r.At), se.ID); err != nil {
				return wrap(op, err)
			}
			out.Advanced = true
		}
		if touch {
			if _, err := tx.StmtContext(ctx, stmts[3]).ExecContext(ctx, micro(r.At), se.UserID); err != nil {
				return wrap(op, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
