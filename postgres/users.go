package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend"
)

const userColumns = `id, username, password_hash, roles, client_id, disabled, created_at, last_login_at, last_refresh_at, tokens_not_before, claims, version`

func scanUser(row scanner) (*tokend.User, error) {
	var u tokend.User
	var login, refresh, notBefore pgtype.Timestamptz
	var claims []byte
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Roles, &u.ClientID, &u.Disabled, &u.CreatedAt, &login, &refresh, &notBefore, &claims, &u.Version); err != nil {
		return nil, err
	}
	var err error
	if u.Claims, err = tokend.DecodeClaims(claims); err != nil {
		return nil, fmt.Errorf("claims of user %s: %w", u.ID, err)
	}
	u.Roles = fromList(u.Roles)
	u.CreatedAt, u.LastLoginAt, u.LastRefreshAt = u.CreatedAt.UTC(), fromOpt(login), fromOpt(refresh)
	u.TokensNotBefore = fromOpt(notBefore)
	return &u, nil
}

// insertUser is the one INSERT of a user row.
// A new user is at version 1.
func insertUser(ctx context.Context, tx pgx.Tx, u *tokend.User) error {
	claims, err := tokend.EncodeClaims(u.Claims)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1)`,
		u.ID, u.Username, u.PasswordHash, list(u.Roles), u.ClientID, u.Disabled,
		u.CreatedAt, optTime(u.LastLoginAt), optTime(u.LastRefreshAt), optTime(u.TokensNotBefore), claims)
	if err == nil {
		u.Version = 1
	}
	return err
}

func (s *Store) CreateUser(ctx context.Context, u *tokend.User) error {
	return s.inTx(ctx, "create user", func(ctx context.Context, tx pgx.Tx) error {
		if err := insertUser(ctx, tx, u); err != nil {
			return err
		}
		if u.ClientID != "" {
			if _, err := bumpEndUsers(ctx, tx, u.ClientID, 0); err != nil {
				return err
			}
		}
		return s.recordChanges(ctx, tx, tokend.Change{Kind: tokend.ChangeUser, Ref: u.ID})
	})
}

func (s *Store) UserByID(ctx context.Context, id string) (*tokend.User, error) {
	if unstorable(id) {
		return nil, notFound("user by id")
	}
	return one(ctx, s, "user by id", scanUser, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
}

func (s *Store) UserByName(ctx context.Context, username string) (*tokend.User, error) {
	if unstorable(username) {
		return nil, notFound("user by name")
	}
	return one(ctx, s, "user by name", scanUser, `SELECT `+userColumns+` FROM users WHERE client_id = '' AND username = $1`, username)
}

func (s *Store) ListUsers(ctx context.Context, f tokend.UserFilter) ([]*tokend.User, error) {
	if unstorable(f.ClientID) {
		return nil, nil
	}
	return all(ctx, s, "list users", scanUser, `SELECT `+userColumns+` FROM users WHERE client_id = $1 ORDER BY username`, f.ClientID)
}

func (s *Store) SetUserPassword(ctx context.Context, id, hash string) error {
	if unstorable(id) {
		return notFound("set user password")
	}
	return s.execChanged(ctx, "set user password", tokend.ChangeUser, id,
		`UPDATE users SET password_hash = $1, version = version + 1 WHERE id = $2`, hash, id)
}

func (s *Store) DisableUser(ctx context.Context, id string, at time.Time) error {
	return s.updateUserEndSessions(ctx, "disable user", id, at, "user disabled",
		`UPDATE users SET disabled = true, version = version + 1 WHERE id = $1`, id)
}

func (s *Store) SetUserPasswordEndSessions(ctx context.Context, id, hash string, at time.Time) error {
	return s.updateUserEndSessions(ctx, "set user password", id, at, "password changed",
		`UPDATE users SET password_hash = $2, tokens_not_before = $3, version = version + 1 WHERE id = $1`, id, hash, optTime(at))
}

// updateUserEndSessions runs update on user id and, in the same
// transaction, revokes the user's sessions for reason.
func (s *Store) updateUserEndSessions(ctx context.Context, op, id string, at time.Time, reason, update string, args ...any) error {
	if unstorable(id) {
		return notFound(op)
	}
	return s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, update, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound(op)
		}
		sessions, err := revokeUserSessions(ctx, tx, id, at, reason)
		if err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, append([]tokend.Change{{Kind: tokend.ChangeUser, Ref: id}}, sessions...)...)
	})
}

func (s *Store) TouchLogin(ctx context.Context, userID string, at time.Time) error {
	if unstorable(userID) {
		return nil
	}
	_, err := s.exec(ctx, "touch login", `UPDATE users SET last_login_at = $1, version = version + 1 WHERE id = $2`, optTime(at), userID)
	return err
}

func (s *Store) TouchRefresh(ctx context.Context, userID string, at time.Time) error {
	if unstorable(userID) {
		return nil
	}
	_, err := s.exec(ctx, "touch refresh", `UPDATE users SET last_refresh_at = $1, version = version + 1 WHERE id = $2`, optTime(at), userID)
	return err
}
