package grant

import (
	"container/list"
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/metrics"
)

// Defaults of AuditOptions.
const (
	// DefaultAuditMaxBytes bounds the events waiting to be written.
	DefaultAuditMaxBytes = 8 << 20
	// DefaultAuditReserved is the room kept for security events beyond
	// DefaultAuditMaxBytes.
	DefaultAuditReserved = 1024
	// DefaultAuditWindow is how long repeats of a refusal are merged: about
	// one lock period, so that a locked account hammered from one address
	// writes a row or two a minute instead of one per request.
	DefaultAuditWindow = time.Minute
	// defaultAuditGroupBytes bounds the table of refusals being merged.
	defaultAuditGroupBytes = 1 << 20
)

// auditBatchMax is the most events one store write carries.
const auditBatchMax = 512

// AuditOptions tune an Auditor; the zero value gives the defaults.
type AuditOptions struct {
	// MaxBytes bounds the memory of the events waiting to be written,
	// counting their text (DefaultAuditMaxBytes if 0). Past it, events
	// are dropped and counted in tokend_audit_dropped_total, except
	// security events (tokend.SecurityEvent).
	MaxBytes int
	// Reserved is how many security events may wait beyond MaxBytes
	// (DefaultAuditReserved if 0); past that, Record writes a security
	// event to the store itself, making its caller wait, rather than drop it.
	Reserved int
	// Window is how long repeats of a refusal are merged into one row
	// (DefaultAuditWindow if 0; negative: never merge).
	Window time.Duration
	// MaxGroupBytes bounds the memory of the refusals being merged
	// (1 MiB if 0); when it is full the oldest merge is written out early.
	MaxGroupBytes int
	// Now is the clock that closes merge windows (time.Now if nil): the
	// engine's, since the events' times come from it.
	Now func() time.Time
}

// Auditor writes audit events to the store in batches, off the request
// path: Record does not wait for the store. Three things keep the trail
// from becoming a channel an attacker can fill:
//
//   - Refusals (outcome "failure" or "denied") that repeat the same event
//     with the same subject, IP and other fields within Window are merged:
//     the first is written as usual, the repeats become one row whose
//     Count says how many there were, written when the window closes (or
//     on Flush). Successes are never merged.
//   - Every text field is capped (tokend.AuditEvent.Capped) and copied into
//     one allocation of its own, so a queued event holds at most a few
//     hundred bytes and never pins the request it came from.
//   - The events waiting are bounded in bytes (MaxBytes): past it they are
//     dropped and counted in tokend_audit_dropped_total, except security
//     events, which go to a small reserved lane and, when even that is
//     full, are written synchronously.
type Auditor struct {
	store   tokend.Store
	log     *slog.Logger
	metrics *metrics.Metrics
	now     func() time.Time

	maxBytes, reserved, maxGroupBytes int
	window                            time.Duration

	mu     sync.Mutex
	queue  []queued // waiting, within maxBytes
	spare  []queued // the queue written last time, emptied, to be the next queue
	lane   []queued // security events that found the queue full
	bytes  int      // of queue and of the batches being written from it
	groups map[groupKey]*group
	order  *list.List // of *group, oldest window first
	gbytes int        // of groups

	wake    chan struct{} // a batch is ready
	flushed chan chan struct{}
	done    chan struct{}
}

// queued is a waiting event and the bytes it counts against maxBytes (0
// for events of the reserved lane).
type queued struct {
	ev   tokend.AuditEvent
	size int
}

// groupKey is what makes two refusals the same: every field but the time.
type groupKey struct {
	event, subject, clientID, dialect, ip, outcome, detail string
}

// group is a refusal whose first occurrence was written at start; rep is
// the row of the repeats since: rep.Count of them, the first at rep.At.
type group struct {
	key   groupKey
	start time.Time
	rep   tokend.AuditEvent
	size  int
	elem  *list.Element
}

// groupOverhead approximates a group's own memory beside its text: the
// struct, its map entry and its list element.
const groupOverhead = 320

// NewAuditor returns an auditor; start it with Run.
func NewAuditor(store tokend.Store, log *slog.Logger, m *metrics.Metrics, opts AuditOptions) *Auditor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Auditor{
		store: store, log: log, metrics: m, now: opts.Now,
		maxBytes: opts.MaxBytes, reserved: opts.Reserved, maxGroupBytes: opts.MaxGroupBytes, window: opts.Window,
		groups: map[groupKey]*group{}, order: list.New(),
		wake: make(chan struct{}, 1), flushed: make(chan chan struct{}), done: make(chan struct{}),
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.maxBytes <= 0 {
		a.maxBytes = DefaultAuditMaxBytes
	}
	if a.reserved <= 0 {
		a.reserved = DefaultAuditReserved
	}
	if a.maxGroupBytes <= 0 {
		a.maxGroupBytes = defaultAuditGroupBytes
	}
	if a.window == 0 {
		a.window = DefaultAuditWindow
	}
	return a
}

// AuditStats describe what an auditor holds in memory.
type AuditStats struct {
	// Bytes are counted against MaxBytes: the events waiting and those
	// being written.
	Bytes int
	// Reserved is how many security events wait in the reserved lane.
	Reserved int
	// Groups are the refusals being merged, and GroupBytes their memory.
	Groups, GroupBytes int
}

// Stats returns what the auditor holds now.
func (a *Auditor) Stats() AuditStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AuditStats{Bytes: a.bytes, Reserved: len(a.lane), Groups: len(a.groups), GroupBytes: a.gbytes}
}

// Record queues an event. It returns at once, except when a security
// event finds both the queue and the reserved lane full: then it writes
// that event to the store before returning.
func (a *Auditor) Record(e tokend.AuditEvent) {
	e, size := compact(e)
	a.mu.Lock()
	var now []tokend.AuditEvent
	if a.window > 0 && (e.Outcome == "failure" || e.Outcome == "denied") {
		now = a.coalesce(e, size)
	} else {
		now = a.enqueue(e, size)
	}
	ready := len(a.queue)+len(a.lane) >= auditBatchMax
	a.mu.Unlock()
	if ready {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	if len(now) > 0 {
		a.writeNow(now)
	}
}

// compact returns e capped (tokend.AuditEvent.Capped) with all its text in
// one fresh allocation, so that a queued event never keeps alive a larger
// string (a request body) that its fields were cut from; and the bytes it
// holds.
func compact(e tokend.AuditEvent) (tokend.AuditEvent, int) {
	e = e.Capped()
	fields := e.TextFields()
	n := 0
	for _, f := range fields {
		n += len(*f)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range fields {
		b.WriteString(*f)
	}
	all, off := b.String(), 0
	for _, f := range fields {
		l := len(*f)
		*f = all[off : off+l]
		off += l
	}
	return e, n + eventOverhead
}

// eventOverhead approximates an AuditEvent's own size beside its text:
// seven string headers, a time, two ints.
const eventOverhead = 160

// coalesce records a refusal: the first of its kind is queued, repeats
// within the window are counted in its group. It returns the security
// events that must be written at once. Called with a.mu held.
func (a *Auditor) coalesce(e tokend.AuditEvent, size int) []tokend.AuditEvent {
	k := groupKey{e.Event, e.Subject, e.ClientID, e.Dialect, e.IP, e.Outcome, e.Detail}
	var now []tokend.AuditEvent
	if g := a.groups[k]; g != nil {
		if e.At.Before(g.start.Add(a.window)) {
			if g.rep.Count == 0 {
				g.rep.At = e.At
			}
			g.rep.Count += e.Count
			return nil
		}
		now = a.closeGroup(g)
	}
	now = append(now, a.enqueue(e, size)...)
	need := size + groupOverhead
	for a.gbytes+need > a.maxGroupBytes && a.order.Len() > 0 {
		now = append(now, a.closeGroup(a.order.Front().Value.(*group))...)
	}
	if a.gbytes+need <= a.maxGroupBytes {
		// The group keeps the first event's text (which e's key shares),
		// not that of the repeats.
		rep := e
		rep.Count = 0
		g := &group{key: k, start: e.At, rep: rep, size: need}
		g.elem = a.order.PushBack(g)
		a.groups[k] = g
		a.gbytes += need
	}
	return now
}

// closeGroup ends a merge window, queueing the row of its repeats. It
// returns the security events that must be written at once. Called with
// a.mu held.
func (a *Auditor) closeGroup(g *group) []tokend.AuditEvent {
	a.order.Remove(g.elem)
	delete(a.groups, g.key)
	a.gbytes -= g.size
	if g.rep.Count == 0 {
		return nil
	}
	return a.enqueue(g.rep, g.size-groupOverhead)
}

// closeGroups ends the merge windows that are over at now (all of them if
// all), and returns the security events that must be written at once.
// Called with a.mu held.
func (a *Auditor) closeGroups(now time.Time, all bool) []tokend.AuditEvent {
	var out []tokend.AuditEvent
	for a.order.Len() > 0 {
		g := a.order.Front().Value.(*group)
		if !all && now.Before(g.start.Add(a.window)) {
			break
		}
		out = append(out, a.closeGroup(g)...)
	}
	return out
}

// enqueue queues e if it fits; a security event that does not goes to the
// reserved lane, or is returned to be written at once; anything else is
// dropped and counted. Called with a.mu held.
func (a *Auditor) enqueue(e tokend.AuditEvent, size int) []tokend.AuditEvent {
	switch {
	case a.bytes+size <= a.maxBytes:
		a.queue = append(a.queue, queued{e, size})
		a.bytes += size
	case !tokend.SecurityEvent(e.Event):
		a.drop(e.Count)
	case len(a.lane) < a.reserved:
		a.lane = append(a.lane, queued{e, 0})
	default:
		return []tokend.AuditEvent{e}
	}
	return nil
}

func (a *Auditor) drop(n int) {
	if a.metrics != nil {
		a.metrics.AuditDropped.Add(float64(n))
	}
}

// writeNow writes security events that found no room, in the caller's
// goroutine.
func (a *Auditor) writeNow(events []tokend.AuditEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.store.AppendAudit(ctx, events); err != nil {
		a.lost(events, err)
	}
}

// lost reports events the store refused: counted, and each security event
// logged, so that none disappears silently.
func (a *Auditor) lost(events []tokend.AuditEvent, err error) {
	n := 0
	for _, e := range events {
		n += e.Count
		if tokend.SecurityEvent(e.Event) {
			a.log.Error("security audit event not stored", "event", e.Event, "at", e.At, "client_id", e.ClientID, "ip", e.IP, "detail", e.Detail, "count", e.Count, "err", err)
		}
	}
	a.log.Warn("write audit events", "events", len(events), "err", err)
	a.drop(n)
}

// Run writes queued events every interval (or sooner when a batch fills)
// until ctx ends, then writes what is left, merged repeats included.
func (a *Auditor) Run(ctx context.Context, interval time.Duration) {
	defer close(a.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			a.writeOut(false)
		case <-a.wake:
			a.writeOut(false)
		case reply := <-a.flushed:
			a.writeOut(true)
			close(reply)
		case <-ctx.Done():
			a.writeOut(true)
			return
		}
	}
}

// writeOut writes what is queued, the reserved lane first, with the
// repeats of the merge windows that are over (of all, if all). The bytes
// of an event stay counted until its batch is written, so that a slow
// store cannot make the auditor hold more than maxBytes. Under the lock it
// only swaps slices: the queue is handed over whole and replaced by the
// one written last time, emptied, so that Record neither waits for a copy
// of the queue nor grows a fresh one from nothing after every write.
func (a *Auditor) writeOut(all bool) {
	a.mu.Lock()
	urgent := a.closeGroups(a.now(), all)
	lane, queue := a.lane, a.queue
	a.lane, a.queue, a.spare = nil, a.spare, nil
	a.mu.Unlock()
	var late []queued
	for _, e := range urgent {
		late = append(late, queued{e, 0})
	}
	batch := make([]tokend.AuditEvent, 0, min(len(lane)+len(queue)+len(late), auditBatchMax))
	size := 0
	write := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.store.AppendAudit(ctx, batch); err != nil {
			a.lost(batch, err)
		}
		cancel()
		clear(batch) // let the strings go
		batch = batch[:0]
		a.mu.Lock()
		a.bytes -= size
		a.mu.Unlock()
		size = 0
	}
	for _, part := range [][]queued{lane, queue, late} {
		for _, q := range part {
			batch = append(batch, q.ev)
			size += q.size
			if len(batch) == auditBatchMax {
				write()
			}
		}
	}
	if len(batch) > 0 {
		write()
	}
	clear(queue)
	if cap(queue) <= maxSpareQueue {
		a.mu.Lock()
		a.spare = queue[:0]
		a.mu.Unlock()
	}
}

// maxSpareQueue bounds the queue kept for reuse (in events), so that a
// burst does not pin its memory for good.
const maxSpareQueue = 16384

// Flush writes everything queued so far, merged repeats included, and
// returns when it is stored (or ctx ends). For tests and shutdown.
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

// purgeAudit deletes the audit events older than the retention.
func (e *Engine) purgeAudit(ctx context.Context, now time.Time) {
	if e.cfg.AuditRetention <= 0 {
		return
	}
	n, err := e.store.PurgeAudit(ctx, now.Add(-e.cfg.AuditRetention))
	switch {
	case err != nil && ctx.Err() == nil:
		e.log.Warn("purge audit events failed", "err", err)
	case n > 0:
		e.log.Info("audit events purged", "events", n, "retention", e.cfg.AuditRetention.String())
	}
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
