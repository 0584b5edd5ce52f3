package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tokend/tokend"
)

// ImportUsers writes a batch in one immediate transaction: SQLite has one
// writer, so what each user is matched against cannot change until the
// batch commits, and the users earlier in the batch are seen by the later
// ones.
func (s *Store) ImportUsers(ctx context.Context, batch []tokend.ImportUser) ([]tokend.ImportOutcome, error) {
	const op = "import users"
	out := make([]tokend.ImportOutcome, len(batch))
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		for i := range batch {
			o, err := importUser(ctx, tx, &batch[i])
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

func importUser(ctx context.Context, tx *sql.Tx, in *tokend.ImportUser) (tokend.ImportOutcome, error) {
	const op = "import user"
	var byID, byName *tokend.User
	idIsClient := false
	var err error
	if in.ByID {
		if byID, err = optUser(scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, in.User.ID))); err != nil {
			return tokend.ImportOutcome{}, wrap(op, err)
		}
		var one int
		switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM clients WHERE id = ?`, in.User.ID).Scan(&one); {
		case err == nil:
			idIsClient = true
		case !errors.Is(err, sql.ErrNoRows):
			return tokend.ImportOutcome{}, wrap(op, err)
		}
	}
	if byName, err = optUser(scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE client_id = '' AND username = ?`, in.User.Username))); err != nil {
		return tokend.ImportOutcome{}, wrap(op, err)
	}
	plan := in.Plan(byID, byName, idIsClient)
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
	return plan.Outcome, recordChange(ctx, tx, tokend.ChangeUser, plan.Write.ID)
}

// optUser turns "no such row" into a nil user.
func optUser(u *tokend.User, err error) (*tokend.User, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return u, err
}
