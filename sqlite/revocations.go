package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// What the revocation feed reads: revoked tokens and sessions with their
// times, all of them or those a batch of changes names.

// inChunk bounds the placeholders of one IN list (SQLite allows 32766;
// smaller statements prepare faster and are few).
const inChunk = 500

func (s *Store) RevokedTokens(ctx context.Context, now time.Time, jtis []string) ([]tokend.RevokedToken, error) {
	var out []tokend.RevokedToken
	err := s.eachChunk(ctx, "revoked tokens", `SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ?`, `jti`,
		[]any{micro(now)}, jtis, func(scan func(...any) error) error {
			var t tokend.RevokedToken
			var exp int64
			if err := scan(&t.JTI, &exp); err != nil {
				return err
			}
			t.ExpiresAt = fromMicro(exp)
			out = append(out, t)
			return nil
		})
	return out, err
}

func (s *Store) RevokedSessions(ctx context.Context, since time.Time, ids []string) ([]tokend.RevokedSession, error) {
	var out []tokend.RevokedSession
	// revoked_at is 0 while live; a zero since must not select live ones.
	from := max(micro(since), 1)
	err := s.eachChunk(ctx, "revoked sessions", `SELECT id, user_id, revoked_at, expires_at FROM sessions WHERE revoked_at >= ?`, `id`,
		[]any{from}, ids, func(scan func(...any) error) error {
			var se tokend.RevokedSession
			var revoked, expires int64
			if err := scan(&se.ID, &se.UserID, &revoked, &expires); err != nil {
				return err
			}
			se.RevokedAt, se.ExpiresAt = fromMicro(revoked), fromMicro(expires)
			out = append(out, se)
			return nil
		})
	return out, err
}

// eachChunk runs query (whose WHERE clause takes args) once, or, when keys
// is not nil, once per chunk of keys with "AND column IN (...)" added, and
// calls row for every row.
func (s *Store) eachChunk(ctx context.Context, op, query, column string, args []any, keys []string, row func(scan func(...any) error) error) error {
	run := func(q string, a []any) error {
		rows, err := s.r.QueryContext(ctx, q, a...)
		if err != nil {
			return wrap(op, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows.Scan); err != nil {
				return wrap(op, err)
			}
		}
		return wrap(op, rows.Err())
	}
	if keys == nil {
		return run(query, args)
	}
	for len(keys) > 0 {
		n := min(len(keys), inChunk)
		a := append([]any{}, args...)
		for _, k := range keys[:n] {
			a = append(a, k)
		}
		q := query + ` AND ` + column + ` IN (?` + strings.Repeat(`, ?`, n-1) + `)`
		if err := run(q, a); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// Revoked access tokens.

func (s *Store) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return s.inTx(ctx, "revoke token", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING`, jti, micro(expiresAt))
		if err != nil {
			return wrap("revoke token", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return recordChange(ctx, tx, tokend.ChangeToken, jti)
	})
}

func (s *Store) Revoked(ctx context.Context, now time.Time) (tokens, sessions []string, err error) {
	for _, q := range []struct {
		query string
		args  []any
		out   *[]string
	}{
		{`SELECT jti FROM revoked_tokens WHERE expires_at > ?`, []any{micro(now)}, &tokens},
		// Every revoked session still stored, expired or not: its access
		// tokens may outlive it (PurgeRevokedSessions bounds the set).
		{`SELECT id FROM sessions WHERE revoked_at <> 0`, nil, &sessions},
	} {
		rows, err := s.r.QueryContext(ctx, q.query, q.args...)
		if err != nil {
			return nil, nil, wrap("revoked", err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, nil, wrap("revoked", err)
			}
			*q.out = append(*q.out, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, wrap("revoked", err)
		}
	}
	return tokens, sessions, nil
}

func (s *Store) PurgeRevokedSessions(ctx context.Context, expiredBefore time.Time) error {
	_, err := s.exec(ctx, `DELETE FROM sessions WHERE revoked_at <> 0 AND expires_at < ?`, micro(expiredBefore))
	return wrap("purge revoked sessions", err)
}
