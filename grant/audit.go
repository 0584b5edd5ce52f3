package grant

import (
	"context"
	"log/slog"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/metrics"
)

// Auditor writes audit events to the store in batches, off the request
// path: Record never waits for the store. If the buffer is full (the store
// is down, or slower than the traffic), events are dropped and counted in
// tokend_audit_dropped_total rather than slowing issuance.
type Auditor struct {
	store   tokend.Store
	log     *slog.Logger
	metrics *metrics.Metrics
	ch      chan tokend.AuditEvent
	flushed chan chan struct{}
	done    chan struct{}
}

// NewAuditor returns an auditor with room for buffer events in flight.
// Start it with Run.
func NewAuditor(store tokend.Store, log *slog.Logger, m *metrics.Metrics, buffer int) *Auditor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Auditor{store: store, log: log, metrics: m, ch: make(chan tokend.AuditEvent, buffer), flushed: make(chan chan struct{}), done: make(chan struct{})}
}

// Record queues an event.
func (a *Auditor) Record(e tokend.AuditEvent) {
	select {
	case a.ch <- e:
	default:
		if a.metrics != nil {
			a.metrics.AuditDropped.Inc()
		}
	}
}

// Run writes queued events every interval (or sooner when a batch fills)
// until ctx ends, then writes what is left.
func (a *Auditor) Run(ctx context.Context, interval time.Duration) {
	defer close(a.done)
	const batchMax = 512
	batch := make([]tokend.AuditEvent, 0, batchMax)
	write := func() {
		if len(batch) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.store.AppendAudit(wctx, batch); err != nil {
			a.log.Warn("write audit events", "events", len(batch), "err", err)
			if a.metrics != nil {
				a.metrics.AuditDropped.Add(float64(len(batch)))
			}
		}
		batch = batch[:0]
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case e := <-a.ch:
			batch = append(batch, e)
			if len(batch) >= batchMax {
				write()
			}
		case <-t.C:
			write()
		case reply := <-a.flushed:
			for drained := false; !drained; {
				select {
				case e := <-a.ch:
					batch = append(batch, e)
				default:
					drained = true
				}
			}
			write()
			close(reply)
		case <-ctx.Done():
			for {
				select {
				case e := <-a.ch:
					batch = append(batch, e)
					continue
				default:
				}
				break
			}
			write()
			return
		}
	}
}

// Flush writes everything queued so far and returns when it is stored (or
// ctx ends). For tests and shutdown.
func (a *Auditor) Flush(ctx context.Context) {
	reply := make(chan struct{})
	select {
	case a.flushed <- reply:
	case <-ctx.Done():
		return
	case <-a.done:
		return
	}
	select {
	case <-reply:
	case <-ctx.Done():
	}
}

// audit records an event of this request (its client IP from ctx).
func (e *Engine) audit(ctx context.Context, event, subject, clientID, outcome, detail string) {
	if e.auditor == nil {
		return
	}
	e.auditor.Record(tokend.AuditEvent{
		At: e.now(), Event: event, Subject: subject, ClientID: clientID,
		Dialect: dialectOf(ctx), IP: tokend.ClientIP(ctx), Outcome: outcome, Detail: detail,
	})
}

type dialectKey struct{}

// WithDialect marks ctx as a request of a dialect (or of the OAuth
// endpoints), for the audit trail.
func WithDialect(ctx context.Context, dialect string) context.Context {
	return context.WithValue(ctx, dialectKey{}, dialect)
}

func dialectOf(ctx context.Context) string {
	d, _ := ctx.Value(dialectKey{}).(string)
	return d
}
