package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
)

// What the admin API and the CLI need: updates that compare versions,
// deletions, and pages of lists (keyset pagination on the id, or the seq
// of the audit trail, so that a page never repeats or skips a row that
// existed when the walk began). Each write is one transaction that takes
// the row's lock with its first statement, so a concurrent change cannot
// slip between the version check and the write.

func stale(op string) error {
	return &tokend.Error{Code: tokend.EPRECONDITION, Message: "the object changed since that version", Err: errors.New(op)}
}

// missingOrStale tells why a statement that names a row and a version
// touched nothing: the row is gone, or at another version.
func missingOrStale(ctx context.Context, tx pgx.Tx, op, table, id string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM `+table+` WHERE id = $1`, id).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return notFound(op)
	case err != nil:
		return err
	default:
		return stale(op)
	}
}

// revokeUserSessions revokes the user's live sessions in tx and returns
// the changes to record.
func revokeUserSessions(ctx context.Context, tx pgx.Tx, userID string, at time.Time, reason string) ([]tokend.Change, error) {
	rows, err := tx.Query(ctx, `UPDATE sessions SET revoked_at = $2, revoke_reason = $3
		WHERE user_id = $1 AND revoked_at IS NULL RETURNING id`, userID, optTime(at), reason)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	return changesOf(tokend.ChangeSession, ids), nil
}

func changesOf(kind string, refs []string) []tokend.Change {
	out := make([]tokend.Change, len(refs))
	for i, r := range refs {
		out[i] = tokend.Change{Kind: kind, Ref: r}
	}
	return out
}

func (s *Store) UpdateUser(ctx context.Context, u *tokend.User, version int64, at time.Time) error {
	const op = "update user"
	if unstorable(u.ID) {
		return notFound(op)
	}
	claims, err := tokend.EncodeClaims(u.Claims)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		var v int64
		err := tx.QueryRow(ctx, `UPDATE users SET username = $1, roles = $2, claims = $3, disabled = $4, version = version + 1
			WHERE id = $5 AND version = $6 RETURNING version`,
			u.Username, list(u.Roles), claims, u.Disabled, u.ID, version).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return missingOrStale(ctx, tx, op, "users", u.ID)
		}
		if err != nil {
			return err
		}
		changes := []tokend.Change{{Kind: tokend.ChangeUser, Ref: u.ID}}
		if u.Disabled {
			revoked, err := revokeUserSessions(ctx, tx, u.ID, at, "user disabled")
			if err != nil {
				return err
			}
			changes = append(changes, revoked...)
		}
		if err := s.recordChanges(ctx, tx, changes...); err != nil {
			return err
		}
		u.Version = v
		return nil
	})
}

// deleteRow deletes the row id of table at version (0: any) and tells
// why nothing was deleted.
func deleteRow(ctx context.Context, tx pgx.Tx, op, table, id string, version int64) error {
	tag, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE id = $1 AND ($2 = 0 OR version = $2)`, id, version)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return missingOrStale(ctx, tx, op, table, id)
	}
	return nil
}

func (s *Store) DeleteUser(ctx context.Context, id string, version int64) error {
	const op = "delete user"
	if unstorable(id) {
		return notFound(op)
	}
	return s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if err := deleteRow(ctx, tx, op, "users", id, version); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM sessions WHERE user_id = $1 RETURNING id, revoked_at IS NULL`, id)
		if err != nil {
			return err
		}
		live, err := liveIDs(rows)
		if err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, append(changesOf(tokend.ChangeSession, live), tokend.Change{Kind: tokend.ChangeUser, Ref: id})...)
	})
}

// liveIDs collects the ids of rows (id, live) whose live is true.
func liveIDs(rows pgx.Rows) ([]string, error) {
	type row struct {
		id   string
		live bool
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var v row
		err := r.Scan(&v.id, &v.live)
		return v, err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range all {
		if r.live {
			out = append(out, r.id)
		}
	}
	return out, nil
}

// where builds a WHERE clause with numbered parameters.
type where struct {
	conds []string
	args  []any
}

// add adds a condition in which $? stands for arg.
func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(w.args))))
}

// sql returns the clause ("" for none) and, after the arguments, a LIMIT
// parameter of limit.
func (w *where) sql(limit int) (string, []any) {
	clause := ""
	if len(w.conds) > 0 {
		clause = ` WHERE ` + strings.Join(w.conds, " AND ")
	}
	w.args = append(w.args, limit)
	return clause, w.args
}

func (w *where) limit() string { return ` LIMIT $` + strconv.Itoa(len(w.args)) }

func (s *Store) FindUsers(ctx context.Context, q tokend.UserQuery) ([]*tokend.User, error) {
	if unstorable(q.After, q.Search, q.Prefix, q.Role) || (q.ClientID != nil && unstorable(*q.ClientID)) {
		return nil, nil
	}
	var w where
	w.add(`id > $?`, q.After)
	if q.ClientID != nil {
		w.add(`client_id = $?`, *q.ClientID)
	}
	if q.Disabled != nil {
		w.add(`disabled = $?`, *q.Disabled)
	}
	if q.Search != "" {
		// On "C" text lower() folds ASCII letters only, as SQLite's does.
		w.add(`strpos(lower(username), lower($?::text COLLATE "C")) > 0`, q.Search)
	}
	if q.Prefix != "" {
		w.add(`starts_with(username, $?::text)`, q.Prefix)
	}
	if q.Role != "" {
		w.add(`$?::text = ANY(roles)`, q.Role)
	}
	clause, args := w.sql(tokend.PageLimit(q.Limit))
	out, err := all(ctx, s, "find users", scanUser, `SELECT `+userColumns+` FROM users`+clause+` ORDER BY id`+w.limit(), args...)
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

func (s *Store) RevokeUserSessions(ctx context.Context, userID string, at time.Time, reason string) (int, error) {
	if unstorable(userID) {
		return 0, nil
	}
	var n int
	err := s.inTx(ctx, "revoke user sessions", func(ctx context.Context, tx pgx.Tx) error {
		changes, err := revokeUserSessions(ctx, tx, userID, at, reason)
		if err != nil || len(changes) == 0 {
			return err
		}
		n = len(changes)
		return s.recordChanges(ctx, tx, changes...)
	})
	return n, err
}

func (s *Store) FindSessions(ctx context.Context, q tokend.SessionQuery) ([]*tokend.Session, error) {
	if unstorable(q.After, q.UserID) {
		return nil, nil
	}
	var w where
	w.add(`id > $?`, q.After)
	if q.UserID != "" {
		w.add(`user_id = $?`, q.UserID)
	}
	if !q.Live.IsZero() {
		w.add(`revoked_at IS NULL AND expires_at > $?`, q.Live)
	}
	clause, args := w.sql(tokend.PageLimit(q.Limit))
	out, err := all(ctx, s, "find sessions", scanSession, `SELECT `+sessionColumns+` FROM sessions`+clause+` ORDER BY id`+w.limit(), args...)
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

func (s *Store) UpdateClient(ctx context.Context, c *tokend.ClientApp, version int64) error {
	const op = "update client"
	if unstorable(c.ID) {
		return notFound(op)
	}
	return s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		var v int64
		err := tx.QueryRow(ctx, `UPDATE clients SET name = $1, grants = $2, scopes = $3, mode = $4, access_ttl_ms = $5, disabled = $6,
			version = version + 1 WHERE id = $7 AND version = $8 RETURNING version`,
			c.Name, list(c.Grants), list(c.Scopes), c.Mode, c.AccessTTL.Milliseconds(), c.Disabled, c.ID, version).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return missingOrStale(ctx, tx, op, "clients", c.ID)
		}
		if err != nil {
			return err
		}
		if err := s.recordChanges(ctx, tx, tokend.Change{Kind: tokend.ChangeClient, Ref: c.ID}); err != nil {
			return err
		}
		c.Version = v
		return nil
	})
}

func (s *Store) DeleteClient(ctx context.Context, id string, version int64) error {
	const op = "delete client"
	if unstorable(id) {
		return notFound(op)
	}
	return s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if err := deleteRow(ctx, tx, op, "clients", id, version); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM sessions WHERE client_id = $1 OR user_id IN (SELECT id FROM users WHERE client_id = $1)
			RETURNING id, revoked_at IS NULL`, id)
		if err != nil {
			return err
		}
		live, err := liveIDs(rows)
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `DELETE FROM users WHERE client_id = $1 RETURNING id`, id)
		if err != nil {
			return err
		}
		users, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		changes := append(changesOf(tokend.ChangeSession, live), changesOf(tokend.ChangeUser, users)...)
		return s.recordChanges(ctx, tx, append(changes, tokend.Change{Kind: tokend.ChangeClient, Ref: id})...)
	})
}

func (s *Store) FindClients(ctx context.Context, q tokend.ClientQuery) ([]*tokend.ClientApp, error) {
	if unstorable(q.After) {
		return nil, nil
	}
	out, err := all(ctx, s, "find clients", scanClient, `SELECT `+clientColumns+` FROM clients WHERE id > $1 ORDER BY id LIMIT $2`, q.After, tokend.PageLimit(q.Limit))
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

func (s *Store) FindAudit(ctx context.Context, q tokend.AuditQuery) ([]tokend.AuditEvent, error) {
	if unstorable(q.Subject, q.Event, q.ClientID) {
		return nil, nil
	}
	var w where
	if !q.Since.IsZero() {
		w.add(`at >= $?`, q.Since)
	}
	if !q.Until.IsZero() {
		w.add(`at < $?`, q.Until)
	}
	for _, f := range []struct{ col, v string }{{"subject", q.Subject}, {"event", q.Event}, {"client_id", q.ClientID}} {
		if f.v != "" {
			w.add(f.col+` = $?`, f.v)
		}
	}
	order := ` DESC`
	if q.Ascending {
		order = ` ASC`
		if q.Cursor > 0 {
			w.add(`seq > $?`, q.Cursor)
		}
	} else if q.Cursor > 0 {
		w.add(`seq < $?`, q.Cursor)
	}
	clause, args := w.sql(tokend.PageLimit(q.Limit))
	out, err := all(ctx, s, "find audit", scanAudit, `SELECT `+auditColumns+` FROM audit`+clause+` ORDER BY seq`+order+w.limit(), args...)
	if len(out) == 0 {
		out = nil
	}
	return out, err
}
