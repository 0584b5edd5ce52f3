package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend"
)

// Settings, changes, housekeeping.

func (s *Store) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var v []byte
	err := s.row(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, wrap("read secret", err)
	}
	fresh, err := gen()
	if err != nil {
		return nil, fmt.Errorf("generate secret %s: %w", name, err)
	}
	// Another process may have created it meanwhile: keep whichever came first.
	if _, err := s.w.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
		return nil, wrap("create secret", err)
	}
	err = s.w.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	return v, wrap("read secret", err)
}

func (s *Store) Changes(ctx context.Context, after int64) ([]tokend.Change, int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, kind, ref FROM changes WHERE seq > ? ORDER BY seq LIMIT 10000`, after)
	if err != nil {
		return nil, after, wrap("changes", err)
	}
	defer rows.Close()
	var out []tokend.Change
	latest := after
	for rows.Next() {
		var c tokend.Change
		if err := rows.Scan(&c.Seq, &c.Kind, &c.Ref); err != nil {
			return nil, after, wrap("changes", err)
		}
		out = append(out, c)
		latest = c.Seq
	}
	return out, latest, wrap("changes", rows.Err())
}

func (s *Store) Purge(ctx context.Context, now time.Time, keepChanges time.Duration) error {
	return s.inTx(ctx, "purge", func(tx *sql.Tx) error {
		for _, q := range []struct {
			query string
			arg   int64
		}{
			{`DELETE FROM sessions WHERE expires_at < ? AND revoked_at = 0`, micro(now)},
			{`DELETE FROM revoked_tokens WHERE expires_at < ?`, micro(now)},
			{`DELETE FROM failures WHERE last < ?`, micro(now.Add(-24 * time.Hour))},
			{`DELETE FROM changes WHERE at < ? AND seq < (SELECT MAX(seq) FROM changes)`, micro(now.Add(-keepChanges))},
		} {
			if _, err := tx.ExecContext(ctx, q.query, q.arg); err != nil {
				return wrap("purge", err)
			}
		}
		return nil
	})
}
