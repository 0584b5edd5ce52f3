package grant

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/tokend/tokend"
)

// Limits are the engine's defences against guessing (DESIGN.md: brute
// force). Both counters live in the store, so they hold across restarts
// and nodes.
type Limits struct {
	// LockoutThreshold consecutive failed logins lock an account (0: never)
	// for LockoutBase, doubling with each further failure up to LockoutMax.
	// Unknown usernames are counted and locked the same way, so a lockout
	// tells nothing about which accounts exist.
	LockoutThreshold int
	LockoutBase      time.Duration
	LockoutMax       time.Duration
	// RateLimit failed guessable-secret checks (passwords, client secrets,
	// and logins refused by a lockout) per RateWindow from one client IP
	// (0: no limit) refuse that IP's password and client-secret checks
	// until the window ends. Correct credentials never count, and neither
	// do tokens, which cannot be guessed: a request that presents a token
	// is never refused by this limit.
	RateLimit  int
	RateWindow time.Duration
}

// DefaultLimits are DESIGN.md's: lock after 10 failures for 1 minute,
// doubling up to 15; 30 failures a minute per IP.
var DefaultLimits = Limits{LockoutThreshold: 10, LockoutBase: time.Minute, LockoutMax: 15 * time.Minute, RateLimit: 30, RateWindow: time.Minute}

// accountWindow: failures older than this no longer count toward a lockout.
const accountWindow = 24 * time.Hour

var errLockedMessage = "too many failed attempts, retry later"

// guard keeps the per-IP limit's verdicts in memory, so that checking
// costs no store read; the counts themselves are in the store. It also
// holds the gates that bound this node's password checks in flight per
// account and per client IP (enter).
type guard struct {
	mu      sync.Mutex
	blocked map[string]time.Time // ip -> until
	gates   map[string]*gate
}

// gate is a semaphore for one counter key; users counts the requests that
// hold or wait for it, so that an idle gate is forgotten.
type gate struct {
	slots chan struct{}
	users int
}

// gateWait is how long a password check waits for its account's or
// address's gate before it gives up with EUNAVAILABLE.
const gateWait = 10 * time.Second

// enter waits until fewer than size password checks of key are in flight
// on this node. A reservation in the store counts a check while it is in
// flight (so that concurrent guesses cannot outrun the lockout), so without
// the gate a burst of correct logins of one account, or from one address,
// would itself trip the limit; with it, at most size of them are counted at
// once, fewer than the limit, and the rest queue. It returns the function
// that leaves the gate.
func (g *guard) enter(ctx context.Context, key string, size int) (leave func(), err error) {
	g.mu.Lock()
	if g.gates == nil {
		g.gates = map[string]*gate{}
	}
	gt := g.gates[key]
	if gt == nil {
		gt = &gate{slots: make(chan struct{}, size)}
		g.gates[key] = gt
	}
	gt.users++
	g.mu.Unlock()
	done := func() {
		g.mu.Lock()
		if gt.users--; gt.users == 0 {
			delete(g.gates, key)
		}
		g.mu.Unlock()
	}
	t := time.NewTimer(gateWait)
	defer t.Stop()
	select {
	case gt.slots <- struct{}{}:
		return func() { <-gt.slots; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	case <-t.C:
		done()
		return nil, tokend.Errorf(tokend.EUNAVAILABLE, "too many logins in progress, retry later")
	}
}

// gateSize is how many checks of one counter with this limit may be in
// flight on a node: half the limit, so that a burst of right passwords
// never reaches it on its own.
func gateSize(limit int) int { return max(1, limit/2) }

// accountKey names an account's failure counter: a keyed hash of the
// username, so that unknown names (often a password typed in the wrong
// field) are never stored, in the counters or the audit trail.
func (e *Engine) accountKey(username string) string {
	m := hmac.New(sha256.New, e.pepper)
	m.Write([]byte("account:" + username))
	return "acct:" + hex.EncodeToString(m.Sum(nil)[:20])
}

func (e *Engine) accountAttempt(key string) tokend.Attempt {
	l := e.cfg.Limits
	return tokend.Attempt{Key: key, Window: accountWindow, Limit: l.LockoutThreshold, LockBase: l.LockoutBase, LockMax: l.LockoutMax}
}

func (e *Engine) ipAttempt(ip string) tokend.Attempt {
	l := e.cfg.Limits
	return tokend.Attempt{Key: "ip:" + ip, Window: l.RateWindow, Limit: l.RateLimit}
}

// loginAttempt is a password check's reservation against the account's
// and the client IP's failure counters, taken before the password is
// hashed: concurrent guesses are counted as they start, so that at most
// LockoutThreshold of them (plus those already hashing on other nodes)
// are ever evaluated per lock period, however many arrive at once.
type loginAttempt struct {
	at      time.Time
	key     string // the account's counter
	account bool   // the account's counter holds this attempt
	ip      string // the IP's counter key, if it holds this attempt
	counts  tokend.Reservation
	ipCount int
	leave   []func() // the gates this attempt holds
}

// done leaves the attempt's gates.
func (la *loginAttempt) done() {
	for _, f := range la.leave {
		f()
	}
	la.leave = nil
}

// reserveLogin reserves a login attempt, or refuses it: ETOOMANY when the
// client IP is over its limit or the account is locked. A refusal by the
// lockout still counts against the IP, so a flood against a locked name is
// soon refused by the per-IP limit.
func (e *Engine) reserveLogin(ctx context.Context, key string) (*loginAttempt, error) {
	if err := e.checkIP(ctx); err != nil {
		return nil, err
	}
	la := &loginAttempt{key: key}
	l := e.cfg.Limits
	ip := tokend.ClientIP(ctx)
	if l.LockoutThreshold > 0 {
		leave, err := e.guard.enter(ctx, key, gateSize(l.LockoutThreshold))
		if err != nil {
			return nil, err
		}
		la.leave = append(la.leave, leave)
	}
	if ip != "" && l.RateLimit > 0 {
		leave, err := e.guard.enter(ctx, "ip:"+ip, gateSize(l.RateLimit))
		if err != nil {
			la.done()
			return nil, err
		}
		la.leave = append(la.leave, leave)
	}
	la.at = e.now()
	var attempts []tokend.Attempt
	iAcct, iIP := -1, -1
	if l.LockoutThreshold > 0 {
		iAcct = len(attempts)
		attempts = append(attempts, e.accountAttempt(key))
	}
	if ip != "" && l.RateLimit > 0 {
		iIP = len(attempts)
		attempts = append(attempts, e.ipAttempt(ip))
	}
	if len(attempts) == 0 {
		return la, nil
	}
	rs, err := e.store.ReserveAttempts(ctx, la.at, attempts)
	if err != nil {
		la.done()
		return nil, fmt.Errorf("reserve login attempt: %w", err)
	}
	if iAcct >= 0 {
		la.account, la.counts = rs[iAcct].Admitted, rs[iAcct]
	}
	if iIP >= 0 && rs[iIP].Admitted {
		la.ip, la.ipCount = attempts[iIP].Key, rs[iIP].Count
	}
	switch {
	case iIP >= 0 && !rs[iIP].Admitted:
		// Over the IP's limit (perhaps on another node): nothing is
		// evaluated, so the account gets its reservation back.
		la.ip = ""
		e.settleLogin(ctx, la, false)
		until := attempts[iIP].LockedUntil(rs[iIP].FailureCount)
		e.throttle(ctx, ip, until, rs[iIP].Count)
		return nil, e.ipLimited(until)
	case iAcct >= 0 && !rs[iAcct].Admitted:
		e.audit(ctx, "login.locked", key, "", "denied", "")
		e.countGuard("login_locked")
		if la.ip != "" && la.ipCount >= l.RateLimit {
			e.throttle(ctx, ip, la.at.Add(l.RateWindow), la.ipCount)
		}
		la.done()
		until := attempts[iAcct].LockedUntil(rs[iAcct].FailureCount)
		return nil, &tokend.Error{Code: tokend.ETOOMANY, Field: "username", Message: errLockedMessage, RetryAfter: until.Sub(la.at)}
	}
	return la, nil
}

// settleLogin ends a reservation whose password was right (ok: the
// account's failures are forgotten) or was never checked (the attempt is
// taken back from both counters).
func (e *Engine) settleLogin(ctx context.Context, la *loginAttempt, ok bool) {
	var release, reset []string
	if la.ip != "" {
		release = append(release, la.ip)
	}
	switch {
	case la.account && ok:
		reset = append(reset, la.key)
	case la.account:
		release = append(release, la.key)
	}
	if err := e.store.SettleAttempts(context.WithoutCancel(ctx), la.at, release, reset); err != nil {
		e.log.Warn("settle login attempt", "err", err)
	}
	la.done()
}

// loginFailed keeps a failed login's reservation: it counts against the
// account and the IP. The audit trail names the account by its counter's
// keyed hash and, when the name exists, the user's id; never by the name
// typed, which may be a password typed into the wrong field.
func (e *Engine) loginFailed(ctx context.Context, la *loginAttempt, u *tokend.User) {
	subject := la.key
	if u != nil {
		subject = u.ID
	}
	e.audit(ctx, "login.failed", subject, "", "failure", "account="+la.key)
	if la.account && la.counts.Count >= e.cfg.Limits.LockoutThreshold {
		e.log.Warn("account locked after failed logins", "failures", la.counts.Count)
		e.audit(ctx, "account.locked", subject, "", "denied", "account="+la.key)
	}
	if la.ip != "" && la.ipCount >= e.cfg.Limits.RateLimit {
		e.throttle(ctx, tokend.ClientIP(ctx), la.at.Add(e.cfg.Limits.RateWindow), la.ipCount)
	}
	e.countGuard("login")
	la.done()
}

// checkIP refuses a password or client-secret check from an IP over the
// failure limit, from this node's memory (the store has the last word for
// passwords: reserveLogin).
func (e *Engine) checkIP(ctx context.Context) error {
	ip := tokend.ClientIP(ctx)
	if ip == "" || e.cfg.Limits.RateLimit <= 0 {
		return nil
	}
	e.guard.mu.Lock()
	until, ok := e.guard.blocked[ip]
	e.guard.mu.Unlock()
	if ok && e.now().Before(until) {
		return e.ipLimited(until)
	}
	return nil
}

func (e *Engine) ipLimited(until time.Time) error {
	return &tokend.Error{Code: tokend.ETOOMANY, Message: "too many failed requests from this address, retry later", RetryAfter: until.Sub(e.now())}
}

// secretFailed counts a failed client-secret check against the client IP
// (after the fact: a secret check is a cheap keyed hash, so there is no
// crowd of them in flight to reserve against).
func (e *Engine) secretFailed(ctx context.Context, what string) {
	e.countGuard(what)
	ip := tokend.ClientIP(ctx)
	if ip == "" || e.cfg.Limits.RateLimit <= 0 {
		return
	}
	f, err := e.store.RecordFailure(ctx, "ip:"+ip, e.now(), e.cfg.Limits.RateWindow)
	if err != nil {
		e.log.Warn("record failed check", "err", err)
		return
	}
	if f.Count >= e.cfg.Limits.RateLimit {
		e.throttle(ctx, ip, f.Since.Add(e.cfg.Limits.RateWindow), f.Count)
	}
}

// countGuard counts a refused credential or token in the metrics.
func (e *Engine) countGuard(what string) {
	if e.metrics != nil {
		e.metrics.Guard.WithLabelValues(what).Inc()
	}
}

// throttle notes that ip is over its failure limit until `until`.
func (e *Engine) throttle(ctx context.Context, ip string, until time.Time, failures int) {
	now := e.now()
	e.guard.mu.Lock()
	if len(e.guard.blocked) > 100_000 { // forget verdicts that ran out
		for k, u := range e.guard.blocked {
			if now.After(u) {
				delete(e.guard.blocked, k)
			}
		}
	}
	first := !e.guard.blocked[ip].After(now)
	if until.After(e.guard.blocked[ip]) {
		e.guard.blocked[ip] = until
	}
	e.guard.mu.Unlock()
	if first {
		e.log.Warn("client IP over the failure limit", "ip", ip, "failures", failures, "until", until)
		e.audit(ctx, "ip.throttled", "", "", "denied", "")
	}
}
