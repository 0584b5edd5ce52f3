package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
)

// reserveQuery counts an attempt only if the counter admits it (see
// tokend.Attempt) and always returns the counter: the upserted row when
// admitted, else the row as it stands (the outer SELECT sees the snapshot
// before the CTE, which is the row unchanged). $1 key, $2 at, $3 at minus
// the window, $4 limit, $5 lock base, $6 lock max (microseconds).
const reserveQuery = `WITH up AS (
	INSERT INTO failures (key, count, since, last) VALUES ($1, 1, $2, $2)
	ON CONFLICT (key) DO UPDATE SET
		count = CASE WHEN failures.since < $3 THEN 1 ELSE failures.count + 1 END,
		since = CASE WHEN failures.since < $3 THEN $2 ELSE failures.since END,
		last = $2
	WHERE failures.since < $3 OR failures.count < $4
		OR ($5::bigint > 0 AND failures.last + LEAST($6::bigint, $5::bigint << LEAST(failures.count - $4, 30)) * interval '1 microsecond' <= $2)
	RETURNING count, since, last
)
SELECT count, since, last, true FROM up
UNION ALL
SELECT count, since, last, false FROM failures WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM up)`

// ReserveAttempts sends every reservation in one batch: one round trip.
func (s *Store) ReserveAttempts(ctx context.Context, at time.Time, attempts []tokend.Attempt) ([]tokend.Reservation, error) {
	for _, a := range attempts {
		if unstorable(a.Key) {
			return nil, &tokend.Error{Code: tokend.EINVALID, Message: "unstorable key"}
		}
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	b := &pgx.Batch{}
	for _, a := range attempts {
		b.Queue(reserveQuery, a.Key, at, at.Add(-a.Window), a.Limit, a.LockBase.Microseconds(), a.LockMax.Microseconds())
	}
	res := s.pool.SendBatch(ctx, b)
	defer res.Close()
	out := make([]tokend.Reservation, len(attempts))
	var again []int
	for i := range attempts {
		r := &out[i]
		err := res.QueryRow().Scan(&r.Count, &r.Since, &r.Last, &r.Admitted)
		if errors.Is(err, pgx.ErrNoRows) {
			again = append(again, i)
			continue
		}
		if err != nil {
			return nil, wrap("reserve attempts", err)
		}
	}
	if err := res.Close(); err != nil {
		return nil, wrap("reserve attempts", err)
	}
	// A refused reservation reads the counter from the statement's
	// snapshot, which misses a row another transaction inserted and
	// committed after the statement began (the upsert saw it, the read does
	// not). Asking again takes a new snapshot; it is rare and races only
	// with the same burst, so a few tries settle it.
	for _, i := range again {
		a, r := attempts[i], &out[i]
		var err error
		for try := 0; try < 5; try++ {
			err = s.pool.QueryRow(ctx, reserveQuery, a.Key, at, at.Add(-a.Window), a.Limit, a.LockBase.Microseconds(), a.LockMax.Microseconds()).
				Scan(&r.Count, &r.Since, &r.Last, &r.Admitted)
			if !errors.Is(err, pgx.ErrNoRows) {
				break
			}
		}
		if err != nil {
			return nil, wrap("reserve attempts", err)
		}
	}
	for i := range out {
		out[i].Since, out[i].Last = out[i].Since.UTC(), out[i].Last.UTC()
	}
	return out, nil
}

// SettleAttempts releases and resets counters in one batch.
func (s *Store) SettleAttempts(ctx context.Context, at time.Time, release, reset []string) error {
	if len(release) == 0 && len(reset) == 0 {
		return nil
	}
	if unstorable(release...) || unstorable(reset...) {
		return nil
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	b := &pgx.Batch{}
	for _, k := range release {
		b.Queue(`UPDATE failures SET count = count - 1 WHERE key = $1 AND count > 0 AND since <= $2`, k, at)
	}
	for _, k := range reset {
		b.Queue(`DELETE FROM failures WHERE key = $1`, k)
	}
	return wrap("settle attempts", s.pool.SendBatch(ctx, b).Close())
}

// Failure counters.

func scanFailures(row scanner) (tokend.FailureCount, error) {
	var f tokend.FailureCount
	err := row.Scan(&f.Count, &f.Since, &f.Last)
	f.Since, f.Last = f.Since.UTC(), f.Last.UTC()
	return f, err
}

// RecordFailure is one upsert, atomic under concurrent callers.
func (s *Store) RecordFailure(ctx context.Context, key string, at time.Time, window time.Duration) (tokend.FailureCount, error) {
	if unstorable(key) {
		return tokend.FailureCount{}, &tokend.Error{Code: tokend.EINVALID, Message: "unstorable key"}
	}
	return one(ctx, s, "record failure", scanFailures, `INSERT INTO failures (key, count, since, last) VALUES ($1, 1, $2, $2)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN failures.since < $3 THEN 1 ELSE failures.count + 1 END,
			since = CASE WHEN failures.since < $3 THEN excluded.since ELSE failures.since END,
			last = excluded.last
		RETURNING count, since, last`, key, at, at.Add(-window))
}

func (s *Store) Failures(ctx context.Context, key string) (tokend.FailureCount, error) {
	if unstorable(key) {
		return tokend.FailureCount{}, nil
	}
	f, err := one(ctx, s, "failures", scanFailures, `SELECT count, since, last FROM failures WHERE key = $1`, key)
	if tokend.ErrorCode(err) == tokend.ENOTFOUND {
		return tokend.FailureCount{}, nil
	}
	return f, err
}

func (s *Store) ResetFailures(ctx context.Context, key string) error {
	if unstorable(key) {
		return nil
	}
	_, err := s.exec(ctx, "reset failures", `DELETE FROM failures WHERE key = $1`, key)
	return err
}
