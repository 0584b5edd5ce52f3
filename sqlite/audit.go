package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/tokend/tokend"
)

// The audit trail.

// AppendAudit stores events in one transaction, each capped
// (tokend.AuditEvent.Capped) whoever produced it.
func (s *Store) AppendAudit(ctx context.Context, events []tokend.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.inTx(ctx, "append audit", func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit (at, event, subject, client_id, dialect, ip, outcome, detail, count, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return wrap("append audit", err)
		}
		defer stmt.Close()
		for _, e := range events {
			e = e.Capped()
			if _, err := stmt.ExecContext(ctx, micro(e.At), e.Event, e.Subject, e.ClientID, e.Dialect, e.IP, e.Outcome, e.Detail, e.Count, e.Actor); err != nil {
				return wrap("append audit", err)
			}
		}
		return nil
	})
}

func (s *Store) ListAudit(ctx context.Context, f tokend.AuditFilter) ([]tokend.AuditEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q := `SELECT ` + auditColumns + ` FROM audit WHERE at >= ?`
	args := []any{micro(f.Since)}
	if f.Subject != "" {
		q += ` AND subject = ?`
		args = append(args, f.Subject)
	}
	q += ` ORDER BY at, seq LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap("list audit", err)
	}
	defer rows.Close()
	var out []tokend.AuditEvent
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, wrap("list audit", err)
		}
		out = append(out, e)
	}
	return out, wrap("list audit", rows.Err())
}

const auditColumns = `seq, at, event, subject, client_id, dialect, ip, outcome, detail, count, actor`

func scanAudit(row rowScanner) (tokend.AuditEvent, error) {
	var e tokend.AuditEvent
	var at int64
	err := row.Scan(&e.Seq, &at, &e.Event, &e.Subject, &e.ClientID, &e.Dialect, &e.IP, &e.Outcome, &e.Detail, &e.Count, &e.Actor)
	e.At = fromMicro(at)
	return e, err
}

// auditPurgeBatch is how many rows one transaction of PurgeAudit deletes,
// so that a large backlog never holds the one writer for long.
const auditPurgeBatch = 5000

// PurgeAudit deletes the events from before `before`, a batch per
// transaction.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.w.ExecContext(ctx, `DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE at < ? LIMIT ?)`, micro(before), auditPurgeBatch)
		if err != nil {
			return total, wrap("purge audit", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, wrap("purge audit", err)
		}
		total += n
		if n < auditPurgeBatch {
			return total, nil
		}
	}
}
