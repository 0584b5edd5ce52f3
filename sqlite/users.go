package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tokend/tokend"
)

const userColumns = `id, username, password_hash, roles, client_id, disabled, created_at, last_login_at, last_refresh_at, tokens_not_before, claims, version`

func scanUser(row interface{ Scan(...any) error }) (*tokend.User, error) {
	var u tokend.User
	var roles string
	var disabled int
	var created, login, refresh, notBefore int64
	var claims string
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &roles, &u.ClientID, &disabled, &created, &login, &refresh, &notBefore, &claims, &u.Version); err != nil {
		return nil, err
	}
	var err error
	if u.Claims, err = tokend.DecodeClaims([]byte(claims)); err != nil {
		return nil, fmt.Errorf("claims of user %s: %w", u.ID, err)
	}
	u.Roles = splitList(roles)
	u.Disabled = disabled != 0
	u.CreatedAt, u.LastLoginAt, u.LastRefreshAt = fromMicro(created), fromMicro(login), fromMicro(refresh)
	u.TokensNotBefore = fromMicro(notBefore)
	return &u, nil
}

// insertUser is the one INSERT of a user row.
// A new user is at version 1.
func insertUser(ctx context.Context, tx *sql.Tx, u *tokend.User) error {
	claims, err := tokend.EncodeClaims(u.Claims)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
		u.ID, u.Username, u.PasswordHash, joinList(u.Roles), u.ClientID, b2i(u.Disabled),
		micro(u.CreatedAt), micro(u.LastLoginAt), micro(u.LastRefreshAt), micro(u.TokensNotBefore), string(claims))
	if err == nil {
		u.Version = 1
	}
	return err
}

func (s *Store) CreateUser(ctx context.Context, u *tokend.User) error {
	return s.inTx(ctx, "create user", func(tx *sql.Tx) error {
		if err := insertUser(ctx, tx, u); err != nil {
			return wrap("create user", err)
		}
		if u.ClientID != "" {
			if _, err := bumpEndUsers(ctx, tx, u.ClientID, 0); err != nil {
				return err
			}
		}
		return recordChange(ctx, tx, tokend.ChangeUser, u.ID)
	})
}

func (s *Store) UserByID(ctx context.Context, id string) (*tokend.User, error) {
	u, err := scanUser(s.row(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, wrap("user by id", err)
}

func (s *Store) UserByName(ctx context.Context, username string) (*tokend.User, error) {
	u, err := scanUser(s.row(ctx, `SELECT `+userColumns+` FROM users WHERE client_id = '' AND username = ?`, username))
	return u, wrap("user by name", err)
}

func (s *Store) ListUsers(ctx context.Context, f tokend.UserFilter) ([]*tokend.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE client_id = ? ORDER BY username`, f.ClientID)
	if err != nil {
		return nil, wrap("list users", err)
	}
	defer rows.Close()
	var out []*tokend.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap("list users", err)
		}
		out = append(out, u)
	}
	return out, wrap("list users", rows.Err())
}

func (s *Store) SetUserPassword(ctx context.Context, id, hash string) error {
	return s.execChanged(ctx, "set user password", tokend.ChangeUser, id,
		`UPDATE users SET password_hash = ?, version = version + 1 WHERE id = ?`, hash, id)
}

func (s *Store) DisableUser(ctx context.Context, id string, at time.Time) error {
	return s.updateUserEndSessions(ctx, "disable user", id, at, "user disabled",
		`UPDATE users SET disabled = 1, version = version + 1 WHERE id = ?`, id)
}

func (s *Store) SetUserPasswordEndSessions(ctx context.Context, id, hash string, at time.Time) error {
	return s.updateUserEndSessions(ctx, "set user password", id, at, "password changed",
		`UPDATE users SET password_hash = ?, tokens_not_before = ?, version = version + 1 WHERE id = ?`, hash, micro(at), id)
}

// updateUserEndSessions runs update on user id and, in the same
// transaction, revokes the user's sessions for reason.
func (s *Store) updateUserEndSessions(ctx context.Context, op, id string, at time.Time, reason, update string, args ...any) error {
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, update, args...)
		if err != nil {
			return wrap(op, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound(op)
		}
		if err := recordChange(ctx, tx, tokend.ChangeUser, id); err != nil {
			return err
		}
		_, err = revokeUserSessions(ctx, tx, id, at, reason)
		return err
	})
}

// revokeUserSessions revokes the user's live sessions in tx, recording a
// change for each, and returns how many.
func revokeUserSessions(ctx context.Context, tx *sql.Tx, userID string, at time.Time, reason string) (int, error) {
	const op = "revoke user sessions"
	rows, err := tx.QueryContext(ctx, `SELECT id FROM sessions WHERE user_id = ? AND revoked_at = 0`, userID)
	if err != nil {
		return 0, wrap(op, err)
	}
	var ids []string
	for rows.Next() {
		var sid string
		if err := rows.Scan(&sid); err != nil {
			rows.Close()
			return 0, wrap(op, err)
		}
		ids = append(ids, sid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, wrap(op, err)
	}
	for _, sid := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ?`, micro(at), reason, sid); err != nil {
			return 0, wrap(op, err)
		}
		if err := recordChange(ctx, tx, tokend.ChangeSession, sid); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

func (s *Store) TouchLogin(ctx context.Context, userID string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE users SET last_login_at = ?, version = version + 1 WHERE id = ?`, micro(at), userID)
	return wrap("touch login", err)
}

func (s *Store) TouchRefresh(ctx context.Context, userID string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE users SET last_refresh_at = ?, version = version + 1 WHERE id = ?`, micro(at), userID)
	return wrap("touch refresh", err)
}
