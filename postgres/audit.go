package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
)

// The audit trail.

// AppendAudit stores events in one transaction, each capped
// (tokend.AuditEvent.Capped) whoever produced it: that also makes every
// field valid UTF-8 without NULs, which PostgreSQL text requires.
func (s *Store) AppendAudit(ctx context.Context, events []tokend.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.inTx(ctx, "append audit", func(ctx context.Context, tx pgx.Tx) error {
		rows := make([][]any, len(events))
		for i, e := range events {
			e = e.Capped()
			rows[i] = []any{e.At, e.Event, e.Subject, e.ClientID, e.Dialect, e.IP, e.Outcome, e.Detail, e.Count, e.Actor}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"audit"},
			[]string{"at", "event", "subject", "client_id", "dialect", "ip", "outcome", "detail", "count", "actor"}, pgx.CopyFromRows(rows))
		return err
	})
}

func (s *Store) ListAudit(ctx context.Context, f tokend.AuditFilter) ([]tokend.AuditEvent, error) {
	if unstorable(f.Subject) {
		return nil, nil // no stored subject is invalid UTF-8
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	since := f.Since
	if since.IsZero() {
		since = time.Unix(0, 0)
	}
	out, err := all(ctx, s, "list audit", scanAudit, `SELECT `+auditColumns+` FROM audit
		WHERE at >= $1 AND ($2 = '' OR subject = $2) ORDER BY at, seq LIMIT $3`, since, f.Subject, limit)
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

// PurgeAudit deletes the events from before `before`, purgeBatch rows per
// statement so that a large backlog never runs into the statement timeout.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.exec(ctx, "purge audit", `DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE at < $1 LIMIT $2)`, before, purgeBatch)
		total += n
		if err != nil || n < purgeBatch {
			return total, err
		}
	}
}

const auditColumns = `seq, at, event, subject, client_id, dialect, ip, outcome, detail, count, actor`

func scanAudit(row scanner) (tokend.AuditEvent, error) {
	var e tokend.AuditEvent
	err := row.Scan(&e.Seq, &e.At, &e.Event, &e.Subject, &e.ClientID, &e.Dialect, &e.IP, &e.Outcome, &e.Detail, &e.Count, &e.Actor)
	e.At = e.At.UTC()
	return e, err
}
