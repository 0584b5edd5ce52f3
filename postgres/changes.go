package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tokend/tokend"
)

// Settings, changes, housekeeping.

func scanBytes(row scanner) ([]byte, error) {
	var v []byte
	err := row.Scan(&v)
	return v, err
}

// Secret calls gen only when the secret does not exist yet; of several
// processes that create it at once, the first insert wins (the others wait
// for it on the primary key, then insert nothing) and all read its value.
func (s *Store) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	const query = `SELECT value FROM settings WHERE name = $1`
	v, err := one(ctx, s, "read secret", scanBytes, query, name)
	if tokend.ErrorCode(err) != tokend.ENOTFOUND {
		return v, err
	}
	fresh, err := gen()
	if err != nil {
		return nil, fmt.Errorf("generate secret %s: %w", name, err)
	}
	if _, err := s.exec(ctx, "create secret", `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
		return nil, err
	}
	// A new statement, so a new snapshot: it sees whichever insert won.
	return one(ctx, s, "read secret", scanBytes, query, name)
}

func (s *Store) Changes(ctx context.Context, after int64) ([]tokend.Change, int64, error) {
	out, err := all(ctx, s, "changes", func(row scanner) (tokend.Change, error) {
		var c tokend.Change
		err := row.Scan(&c.Seq, &c.Kind, &c.Ref)
		return c, err
	}, `SELECT seq, kind, ref FROM changes WHERE seq > $1 ORDER BY seq LIMIT 10000`, after)
	if err != nil {
		return nil, after, err
	}
	latest := after
	if len(out) > 0 {
		latest = out[len(out)-1].Seq
	} else {
		out = nil
	}
	return out, latest, nil
}

// Purge deletes in batches, each a statement of its own, so that a large
// backlog neither runs into the statement timeout nor locks many rows at
// once. The newest change always stays, so that the latest seq never goes
// backwards.
func (s *Store) Purge(ctx context.Context, now time.Time, keepChanges time.Duration) error {
	for _, q := range []struct {
		op, query string
		before    time.Time
	}{
		{"purge sessions", `DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < $1 AND revoked_at IS NULL LIMIT $2)`, now},
		{"purge revoked tokens", `DELETE FROM revoked_tokens WHERE jti IN (SELECT jti FROM revoked_tokens WHERE expires_at < $1 LIMIT $2)`, now},
		{"purge failures", `DELETE FROM failures WHERE key IN (SELECT key FROM failures WHERE last < $1 LIMIT $2)`, now.Add(-24 * time.Hour)},
		{"purge changes", `DELETE FROM changes WHERE seq IN (SELECT seq FROM changes
			WHERE at < $1 AND seq < (SELECT MAX(seq) FROM changes) LIMIT $2)`, now.Add(-keepChanges)},
	} {
		for {
			n, err := s.exec(ctx, q.op, q.query, q.before, purgeBatch)
			if err != nil {
				return err
			}
			if n < purgeBatch {
				break
			}
		}
	}
	return nil
}

// Listen calls onChange for every notification of a change recorded in this
// store's schema, by any process (NotifyChannel), and also each time it has
// started listening, since notifications sent while no connection listened
// are lost: the caller then reads Changes, and misses nothing. It holds a
// connection of its own, outside the pool; when that connection fails it
// reconnects, with a growing delay, until ctx ends, and then returns
// ctx.Err(). onChange runs on Listen's goroutine and should return quickly.
func (s *Store) Listen(ctx context.Context, onChange func()) error {
	const minDelay, maxDelay = 100 * time.Millisecond, 10 * time.Second
	delay := minDelay
	for {
		listened, err := s.listen(ctx, onChange)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if listened {
			delay = minDelay
		}
		if s.Logger != nil {
			s.Logger.Warn("listen for store changes", "err", err, "retry_in", delay)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, maxDelay)
	}
}

// listen listens on one connection until it fails or ctx ends; it reports
// whether it got as far as listening.
func (s *Store) listen(ctx context.Context, onChange func()) (listened bool, err error) {
	// A quiet connection is checked this often, so that one a network has
	// silently dropped is noticed and replaced.
	const idleCheck = 30 * time.Second
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return false, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+NotifyChannel); err != nil {
		return false, err
	}
	onChange()
	for {
		wait, cancel := context.WithTimeout(ctx, idleCheck)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			if n.Payload == s.schema || n.Payload == "" {
				onChange()
			}
		case ctx.Err() != nil:
			return true, ctx.Err()
		case pgconn.Timeout(err):
			ping, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(ping)
			cancel()
			if err != nil {
				return true, err
			}
		default:
			return true, err
		}
	}
}
