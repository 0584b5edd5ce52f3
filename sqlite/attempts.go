package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tokend/tokend"
)

// reserveQuery counts an attempt only if the counter admits it (see
// tokend.Attempt): a new counter, one whose window ran out, one under its
// limit, or one whose lock has run out. A refused attempt leaves the row as
// it was and returns nothing. ?1 key, ?2 at, ?3 at minus the window,
// ?4 limit, ?5 lock base, ?6 lock max (microseconds).
const reserveQuery = `INSERT INTO failures (key, count, since, last) VALUES (?1, 1, ?2, ?2)
	ON CONFLICT (key) DO UPDATE SET
		count = CASE WHEN failures.since < ?3 THEN 1 ELSE failures.count + 1 END,
		since = CASE WHEN failures.since < ?3 THEN ?2 ELSE failures.since END,
		last = ?2
	WHERE failures.since < ?3 OR failures.count < ?4
		OR (?5 > 0 AND failures.last + MIN(?6, ?5 << MIN(failures.count - ?4, 30)) <= ?2)
	RETURNING count, since, last`

// ReserveAttempts runs every reservation in one immediate transaction.
func (s *Store) ReserveAttempts(ctx context.Context, at time.Time, attempts []tokend.Attempt) ([]tokend.Reservation, error) {
	out := make([]tokend.Reservation, len(attempts))
	err := s.inTx(ctx, "reserve attempts", func(tx *sql.Tx) error {
		for i, a := range attempts {
			var since, last int64
			r := &out[i]
			err := tx.QueryRowContext(ctx, reserveQuery, a.Key, micro(at), micro(at.Add(-a.Window)), a.Limit,
				a.LockBase.Microseconds(), a.LockMax.Microseconds()).Scan(&r.Count, &since, &last)
			if errors.Is(err, sql.ErrNoRows) {
				// Refused: report the counter as it stands.
				err = tx.QueryRowContext(ctx, `SELECT count, since, last FROM failures WHERE key = ?`, a.Key).Scan(&r.Count, &since, &last)
			} else {
				r.Admitted = true
			}
			if err != nil {
				return wrap("reserve attempts", err)
			}
			r.Since, r.Last = fromMicro(since), fromMicro(last)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SettleAttempts releases and resets counters in one transaction.
func (s *Store) SettleAttempts(ctx context.Context, at time.Time, release, reset []string) error {
	if len(release) == 0 && len(reset) == 0 {
		return nil
	}
	return s.inTx(ctx, "settle attempts", func(tx *sql.Tx) error {
		for _, k := range release {
			if _, err := tx.ExecContext(ctx, `UPDATE failures SET count = count - 1 WHERE key = ? AND count > 0 AND since <= ?`, k, micro(at)); err != nil {
				return wrap("settle attempts", err)
			}
		}
		for _, k := range reset {
			if _, err := tx.ExecContext(ctx, `DELETE FROM failures WHERE key = ?`, k); err != nil {
				return wrap("settle attempts", err)
			}
		}
		return nil
	})
}

// Failure counters.

func (s *Store) RecordFailure(ctx context.Context, key string, at time.Time, window time.Duration) (tokend.FailureCount, error) {
	var f tokend.FailureCount
	var since, last int64
	restart := micro(at.Add(-window))
	err := s.w.QueryRowContext(ctx, `INSERT INTO failures (key, count, since, last) VALUES (?, 1, ?, ?)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN failures.since < ? THEN 1 ELSE failures.count + 1 END,
			since = CASE WHEN failures.since < ? THEN excluded.since ELSE failures.since END,
			last = excluded.last
		RETURNING count, since, last`, key, micro(at), micro(at), restart, restart).Scan(&f.Count, &since, &last)
	if err != nil {
		return f, wrap("record failure", err)
	}
	f.Since, f.Last = fromMicro(since), fromMicro(last)
	return f, nil
}

func (s *Store) Failures(ctx context.Context, key string) (tokend.FailureCount, error) {
	var f tokend.FailureCount
	var since, last int64
	err := s.row(ctx, `SELECT count, since, last FROM failures WHERE key = ?`, key).Scan(&f.Count, &since, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return tokend.FailureCount{}, nil
	}
	if err != nil {
		return f, wrap("failures", err)
	}
	f.Since, f.Last = fromMicro(since), fromMicro(last)
	return f, nil
}

func (s *Store) ResetFailures(ctx context.Context, key string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM failures WHERE key = ?`, key)
	return wrap("reset failures", err)
}
