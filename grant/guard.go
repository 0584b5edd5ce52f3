package grant

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
	// RateLimit failed credential or token checks per RateWindow from one
	// client IP (0: no limit) refuse that IP's credential checks until the
	// window ends. Correctly authenticated traffic never counts.
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
// costs no store read; the counts themselves are in the store.
type guard struct {
	mu      sync.Mutex
	blocked map[string]time.Time // ip -> until
}

// accountKey names an account's failure counter: a keyed hash of the
// username, so that unknown names (often a password typed in the wrong
// field) are not stored.
func (e *Engine) accountKey(username string) string {
	m := hmac.New(sha256.New, e.pepper)
	m.Write([]byte("account:" + username))
	return "acct:" + hex.EncodeToString(m.Sum(nil)[:20])
}

// lockedUntil is when an account with counter f is unlocked (zero if not locked).
func (e *Engine) lockedUntil(f tokend.FailureCount) time.Time {
	l := e.cfg.Limits
	if l.LockoutThreshold <= 0 || f.Count < l.LockoutThreshold {
		return time.Time{}
	}
	d := l.LockoutBase
	for i := l.LockoutThreshold; i < f.Count && d < l.LockoutMax; i++ {
		d *= 2
	}
	return f.Last.Add(min(d, l.LockoutMax))
}

// checkAccount refuses a login to a locked account, before any hashing.
func (e *Engine) checkAccount(ctx context.Context, key, username string) (tokend.FailureCount, error) {
	if e.cfg.Limits.LockoutThreshold <= 0 {
		return tokend.FailureCount{}, nil
	}
	f, err := e.store.Failures(ctx, key)
	if err != nil {
		return f, err
	}
	if until := e.lockedUntil(f); e.now().Before(until) {
		e.audit(ctx, "login.locked", username, "", "denied", "")
		return f, &tokend.Error{Code: tokend.ETOOMANY, Field: "username", Message: errLockedMessage, RetryAfter: until.Sub(e.now())}
	}
	return f, nil
}

// loginFailed counts a failed login against the account and the IP.
func (e *Engine) loginFailed(ctx context.Context, key, username string) {
	e.audit(ctx, "login.failed", username, "", "failure", "")
	if e.cfg.Limits.LockoutThreshold > 0 {
		f, err := e.store.RecordFailure(ctx, key, e.now(), accountWindow)
		if err != nil {
			e.log.Warn("record failed login", "err", err)
		} else if f.Count == e.cfg.Limits.LockoutThreshold {
			e.log.Warn("account locked after failed logins", "failures", f.Count)
			e.audit(ctx, "account.locked", username, "", "denied", "")
		}
	}
	e.failed(ctx, "login")
}

// checkIP refuses a credential check from an IP over the failure limit.
func (e *Engine) checkIP(ctx context.Context) error {
	ip := tokend.ClientIP(ctx)
	if ip == "" || e.cfg.Limits.RateLimit <= 0 {
		return nil
	}
	e.guard.mu.Lock()
	until, ok := e.guard.blocked[ip]
	e.guard.mu.Unlock()
	if now := e.now(); ok && now.Before(until) {
		return &tokend.Error{Code: tokend.ETOOMANY, Message: "too many failed requests from this address, retry later", RetryAfter: until.Sub(now)}
	}
	return nil
}

// failed counts a failed credential or token check against the client IP.
func (e *Engine) failed(ctx context.Context, what string) {
	ip := tokend.ClientIP(ctx)
	if e.metrics != nil {
		e.metrics.Guard.WithLabelValues(what).Inc()
	}
	if ip == "" || e.cfg.Limits.RateLimit <= 0 {
		return
	}
	now := e.now()
	f, err := e.store.RecordFailure(ctx, "ip:"+ip, now, e.cfg.Limits.RateWindow)
	if err != nil {
		e.log.Warn("record failed check", "err", err)
		return
	}
	if f.Count < e.cfg.Limits.RateLimit {
		return
	}
	until := f.Since.Add(e.cfg.Limits.RateWindow)
	e.guard.mu.Lock()
	if len(e.guard.blocked) > 100_000 { // forget verdicts that ran out
		for k, u := range e.guard.blocked {
			if now.After(u) {
				delete(e.guard.blocked, k)
			}
		}
	}
	first := e.guard.blocked[ip].Before(now)
	e.guard.blocked[ip] = until
	e.guard.mu.Unlock()
	if first {
		e.log.Warn("client IP over the failure limit", "ip", ip, "failures", f.Count, "until", until)
		e.audit(ctx, "ip.throttled", "", "", "denied", "")
	}
}
