package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// The audit trail.

// auditRowsPerInsert is how many events one INSERT statement writes:
// SQLite's cost per statement (binding, the virtual machine's start,
// database/sql's bookkeeping) is then paid once for that many rows.
const auditRowsPerInsert = 64

// auditValuesPerRow is how many values one audit row binds.
const auditValuesPerRow = 10

const auditInsertRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

var (
	auditInsertOne  = `INSERT INTO audit (at, event, subject, client_id, dialect, ip, outcome, detail, count, actor) VALUES ` + auditInsertRow
	auditInsertMany = auditInsertOne + strings.Repeat(", "+auditInsertRow, auditRowsPerInsert-1)
)

// AppendAudit stores events in one transaction, each capped
// (tokend.AuditEvent.Capped) whoever produced it, auditRowsPerInsert rows
// per statement.
func (s *Store) AppendAudit(ctx context.Context, events []tokend.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	const op = "append audit"
	// Prepared on the writer before the transaction takes its one connection.
	one, err := prepared(ctx, s.w, &s.wStmts, auditInsertOne)
	if err != nil {
		return wrap(op, err)
	}
	many, err := prepared(ctx, s.w, &s.wStmts, auditInsertMany)
	if err != nil {
		return wrap(op, err)
	}
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		txOne, txMany := tx.StmtContext(ctx, one), tx.StmtContext(ctx, many)
		args := make([]any, 0, auditValuesPerRow*min(len(events), auditRowsPerInsert))
		for len(events) > 0 {
			n, st := 1, txOne
			if len(events) >= auditRowsPerInsert {
				n, st = auditRowsPerInsert, txMany
			}
			args = args[:0]
			for _, e := range events[:n] {
				e = e.Capped()
				args = append(args, micro(e.At), e.Event, e.Subject, e.ClientID, e.Dialect, e.IP, e.Outcome, e.Detail, e.Count, e.Actor)
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return wrap(op, err)
			}
			events = events[n:]
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
