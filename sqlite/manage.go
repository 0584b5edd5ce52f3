package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// What the admin API and the CLI need: updates that compare versions,
// deletions, and pages of lists (keyset pagination on the id, or the seq
// of the audit trail, so that a page never repeats or skips a row that
// existed when the walk began).

func stale(op string) error {
	return &tokend.Error{Code: tokend.EPRECONDITION, Message: "the object changed since that version", Err: errors.New(op)}
}

// missingOrStale tells why a statement that names a row and a version
// touched nothing: the row is gone, or at another version.
func missingOrStale(ctx context.Context, tx *sql.Tx, op, table, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE id = ?`, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return notFound(op)
	case err != nil:
		return wrap(op, err)
	default:
		return stale(op)
	}
}

func (s *Store) UpdateUser(ctx context.Context, u *tokend.User, version int64, at time.Time) error {
	const op = "update user"
	claims, err := tokend.EncodeClaims(u.Claims)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		var v int64
		err := tx.QueryRowContext(ctx, `UPDATE users SET username = ?, roles = ?, claims = ?, disabled = ?, version = version + 1
			WHERE id = ? AND version = ? RETURNING version`,
			u.Username, joinList(u.Roles), string(claims), b2i(u.Disabled), u.ID, version).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return missingOrStale(ctx, tx, op, "users", u.ID)
		}
		if err != nil {
			return wrap(op, err)
		}
		if u.Disabled {
			if _, err := revokeUserSessions(ctx, tx, u.ID, at, "user disabled"); err != nil {
				return err
			}
		}
		u.Version = v
		return recordChange(ctx, tx, tokend.ChangeUser, u.ID)
	})
}

// deleteRow deletes the row id of table at version (0: any) and tells
// why nothing was deleted.
func deleteRow(ctx context.Context, tx *sql.Tx, op, table, id string, version int64) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = ? AND (? = 0 OR version = ?)`, id, version, version)
	if err != nil {
		return wrap(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return missingOrStale(ctx, tx, op, table, id)
	}
	return nil
}

// queryStrings returns the first column of every row of a query in tx.
func queryStrings(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *Store) DeleteUser(ctx context.Context, id string, version int64) error {
	const op = "delete user"
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		if err := deleteRow(ctx, tx, op, "users", id, version); err != nil {
			return err
		}
		live, err := queryStrings(ctx, tx, `SELECT id FROM sessions WHERE user_id = ? AND revoked_at = 0`, id)
		if err != nil {
			return wrap(op, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id); err != nil {
			return wrap(op, err)
		}
		for _, sid := range live {
			if err := recordChange(ctx, tx, tokend.ChangeSession, sid); err != nil {
				return err
			}
		}
		return recordChange(ctx, tx, tokend.ChangeUser, id)
	})
}

func (s *Store) FindUsers(ctx context.Context, q tokend.UserQuery) ([]*tokend.User, error) {
	where, args := []string{`id > ?`}, []any{q.After}
	if q.ClientID != nil {
		where, args = append(where, `client_id = ?`), append(args, *q.ClientID)
	}
	if q.Disabled != nil {
		where, args = append(where, `disabled = ?`), append(args, b2i(*q.Disabled))
	}
	if q.Search != "" {
		// lower() folds ASCII letters only, as PostgreSQL's does on "C" text.
		where, args = append(where, `instr(lower(username), lower(?)) > 0`), append(args, q.Search)
	}
	if q.Prefix != "" {
		// substr and length count characters, on both sides alike.
		where, args = append(where, `substr(username, 1, length(?)) = ?`), append(args, q.Prefix, q.Prefix)
	}
	if q.Role != "" {
		where, args = append(where, `instr(' ' || roles || ' ', ' ' || ? || ' ') > 0`), append(args, q.Role)
	}
	args = append(args, tokend.PageLimit(q.Limit))
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+strings.Join(where, " AND ")+` ORDER BY id LIMIT ?`, args...)
	if err != nil {
		return nil, wrap("find users", err)
	}
	defer rows.Close()
	var out []*tokend.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap("find users", err)
		}
		out = append(out, u)
	}
	return out, wrap("find users", rows.Err())
}

func (s *Store) RevokeUserSessions(ctx context.Context, userID string, at time.Time, reason string) (int, error) {
	var n int
	err := s.inTx(ctx, "revoke user sessions", func(tx *sql.Tx) error {
		var err error
		n, err = revokeUserSessions(ctx, tx, userID, at, reason)
		return err
	})
	return n, err
}

func scanSession(row rowScanner) (*tokend.Session, error) {
	var se tokend.Session
	var rotated, created, expires, revoked int64
	if err := row.Scan(&se.ID, &se.UserID, &se.ClientID, &se.Scope, &se.Dialect, &se.Counter, &rotated, &created, &expires, &revoked, &se.RevokeReason); err != nil {
		return nil, err
	}
	se.RotatedAt, se.CreatedAt, se.ExpiresAt, se.RevokedAt = fromMicro(rotated), fromMicro(created), fromMicro(expires), fromMicro(revoked)
	return &se, nil
}

func (s *Store) FindSessions(ctx context.Context, q tokend.SessionQuery) ([]*tokend.Session, error) {
	where, args := []string{`id > ?`}, []any{q.After}
	if q.UserID != "" {
		where, args = append(where, `user_id = ?`), append(args, q.UserID)
	}
	if !q.Live.IsZero() {
		where, args = append(where, `revoked_at = 0 AND expires_at > ?`), append(args, micro(q.Live))
	}
	args = append(args, tokend.PageLimit(q.Limit))
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE `+strings.Join(where, " AND ")+` ORDER BY id LIMIT ?`, args...)
	if err != nil {
		return nil, wrap("find sessions", err)
	}
	defer rows.Close()
	var out []*tokend.Session
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			return nil, wrap("find sessions", err)
		}
		out = append(out, se)
	}
	return out, wrap("find sessions", rows.Err())
}

func (s *Store) UpdateClient(ctx context.Context, c *tokend.ClientApp, version int64) error {
	const op = "update client"
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		var v int64
		err := tx.QueryRowContext(ctx, `UPDATE clients SET name = ?, grants = ?, scopes = ?, mode = ?, access_ttl_ms = ?, disabled = ?,
			version = version + 1 WHERE id = ? AND version = ? RETURNING version`,
			c.Name, joinList(c.Grants), joinList(c.Scopes), c.Mode, c.AccessTTL.Milliseconds(), b2i(c.Disabled), c.ID, version).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return missingOrStale(ctx, tx, op, "clients", c.ID)
		}
		if err != nil {
			return wrap(op, err)
		}
		c.Version = v
		return recordChange(ctx, tx, tokend.ChangeClient, c.ID)
	})
}

func (s *Store) DeleteClient(ctx context.Context, id string, version int64) error {
	const op = "delete client"
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		if err := deleteRow(ctx, tx, op, "clients", id, version); err != nil {
			return err
		}
		users, err := queryStrings(ctx, tx, `SELECT id FROM users WHERE client_id = ?`, id)
		if err != nil {
			return wrap(op, err)
		}
		const ofClient = `(client_id = ? OR user_id IN (SELECT id FROM users WHERE client_id = ?))`
		live, err := queryStrings(ctx, tx, `SELECT id FROM sessions WHERE `+ofClient+` AND revoked_at = 0`, id, id)
		if err != nil {
			return wrap(op, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE `+ofClient, id, id); err != nil {
			return wrap(op, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE client_id = ?`, id); err != nil {
			return wrap(op, err)
		}
		for _, sid := range live {
			if err := recordChange(ctx, tx, tokend.ChangeSession, sid); err != nil {
				return err
			}
		}
		for _, uid := range users {
			if err := recordChange(ctx, tx, tokend.ChangeUser, uid); err != nil {
				return err
			}
		}
		return recordChange(ctx, tx, tokend.ChangeClient, id)
	})
}

func (s *Store) FindClients(ctx context.Context, q tokend.ClientQuery) ([]*tokend.ClientApp, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id > ? ORDER BY id LIMIT ?`, q.After, tokend.PageLimit(q.Limit))
	if err != nil {
		return nil, wrap("find clients", err)
	}
	defer rows.Close()
	var out []*tokend.ClientApp
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, wrap("find clients", err)
		}
		out = append(out, c)
	}
	return out, wrap("find clients", rows.Err())
}

func (s *Store) FindAudit(ctx context.Context, q tokend.AuditQuery) ([]tokend.AuditEvent, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) { where, args = append(where, cond), append(args, arg) }
	if !q.Since.IsZero() {
		add(`at >= ?`, micro(q.Since))
	}
	if !q.Until.IsZero() {
		add(`at < ?`, micro(q.Until))
	}
	for _, f := range []struct{ col, v string }{{"subject", q.Subject}, {"event", q.Event}, {"client_id", q.ClientID}} {
		if f.v != "" {
			add(f.col+` = ?`, f.v)
		}
	}
	order := `DESC`
	if q.Ascending {
		order = `ASC`
		if q.Cursor > 0 {
			add(`seq > ?`, q.Cursor)
		}
	} else if q.Cursor > 0 {
		add(`seq < ?`, q.Cursor)
	}
	query := `SELECT ` + auditColumns + ` FROM audit`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, tokend.PageLimit(q.Limit))
	rows, err := s.r.QueryContext(ctx, query+` ORDER BY seq `+order+` LIMIT ?`, args...)
	if err != nil {
		return nil, wrap("find audit", err)
	}
	defer rows.Close()
	var out []tokend.AuditEvent
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, wrap("find audit", err)
		}
		out = append(out, e)
	}
	return out, wrap("find audit", rows.Err())
}
