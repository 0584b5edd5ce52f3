package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend"
)

// ImportUsers writes a batch in one immediate transaction: SQLite has one
// writer, so what each user is matched against cannot change until the
// batch commits, and the users earlier in the batch are seen by the later
// ones.
func (s *Store) ImportUsers(ctx context.Context, batch []tokend.ImportUser) ([]tokend.ImportOutcome, error) {
	const op = "import users"
	// The lookups run for every user: prepared once (before the
	// transaction takes the one write connection), they skip the parser.
	var st importStmts
	for i, q := range []string{qUserByID, qClientID, qUserByName, qChange} {
		var err error
		if st[i], err = prepared(ctx, s.w, &s.wStmts, q); err != nil {
			return nil, wrap(op, err)
		}
	}
	out := make([]tokend.ImportOutcome, len(batch))
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		var txst importStmts
		for i := range st {
			txst[i] = tx.StmtContext(ctx, st[i])
		}
		for i := range batch {
			o, err := importUser(ctx, tx, &txst, &batch[i])
			if err != nil {
				return err
			}
			out[i] = o
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// The statements of an import, in importStmts' order.
const (
	qUserByID   = `SELECT ` + userColumns + ` FROM users WHERE id = ?`
	qClientID   = `SELECT 1 FROM clients WHERE id = ?`
	qUserByName = `SELECT ` + userColumns + ` FROM users WHERE client_id = '' AND username = ?`
	qChange     = `INSERT INTO changes (kind, ref, at) VALUES (?, ?, ?)`
)

type importStmts [4]*sql.Stmt

func importUser(ctx context.Context, tx *sql.Tx, st *importStmts, in *tokend.ImportUser) (tokend.ImportOutcome, error) {
	const op = "import user"
	var state tokend.ImportState
	var err error
	if in.ByID {
		if state.ByID, err = optUser(scanUser(st[0].QueryRowContext(ctx, in.User.ID))); err != nil {
			return tokend.ImportOutcome{}, wrap(op, err)
		}
		var one int
		switch err := st[1].QueryRowContext(ctx, in.User.ID).Scan(&one); {
		case err == nil:
			state.IDIsClient = true
		case !errors.Is(err, sql.ErrNoRows):
			return tokend.ImportOutcome{}, wrap(op, err)
		}
		if state.IDAsName, err = optUser(scanUser(st[2].QueryRowContext(ctx, in.User.ID))); err != nil {
			return tokend.ImportOutcome{}, wrap(op, err)
		}
	}
	if state.ByName, err = optUser(scanUser(st[2].QueryRowContext(ctx, in.User.Username))); err != nil {
		return tokend.ImportOutcome{}, wrap(op, err)
	}
	if state.NameAsID, err = optUser(scanUser(st[0].QueryRowContext(ctx, in.User.Username))); err != nil {
		return tokend.ImportOutcome{}, wrap(op, err)
	}
	plan := in.Plan(state)
	switch plan.Outcome.Result {
	case tokend.ImportCreated:
		if err := insertUser(ctx, tx, plan.Write); err != nil {
			return tokend.ImportOutcome{}, wrap(op, err)
		}
	case tokend.ImportUpdated:
		u := plan.Write
		claims, err := tokend.EncodeClaims(u.Claims)
		if err != nil {
			return tokend.ImportOutcome{}, fmt.Errorf("%s: %w", op, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET username = ?, password_hash = ?, roles = ?, claims = ?, disabled = ?,
			created_at = ?, last_login_at = ?, tokens_not_before = ?, version = version + 1 WHERE id = ?`,
			u.Username, u.PasswordHash, joinList(u.Roles), string(claims), b2i(u.Disabled),
			micro(u.CreatedAt), micro(u.LastLoginAt), micro(u.TokensNotBefore), u.ID)
		if err != nil {
			return tokend.ImportOutcome{}, wrap(op, err)
		}
		reason := ""
		switch {
		case plan.PasswordChanged:
			reason = "password changed"
		case u.Disabled:
			reason = "user disabled"
		}
		if reason != "" {
			if _, err := revokeUserSessions(ctx, tx, u.ID, in.At, reason); err != nil {
				return tokend.ImportOutcome{}, err
			}
		}
	default:
		return plan.Outcome, nil
	}
	// recordChange's statement, prepared.
	_, err = st[3].ExecContext(ctx, tokend.ChangeUser, plan.Write.ID, time.Now().UnixMicro())
	return plan.Outcome, wrap("record change", err)
}

// optUser turns "no such row" into a nil user.
func optUser(u *tokend.User, err error) (*tokend.User, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return u, err
}
