// Package grant is tokend's engine: it authenticates clients and users, runs
// the grants (password, client_credentials, refresh_token) with their login
// sessions and refresh-token rotation, and revokes and introspects tokens.
// The standard OAuth endpoints and every dialect call it; none of them checks
// a credential or touches a session on its own.
package grant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/token"
)

// Config holds the engine's settings.
type Config struct {
	Issuer   string
	Audience string
	// Alg is the default signing algorithm.
	Alg string
	// AccessTTL is the default access-token lifetime; RefreshTTL the
	// lifetime of a login session and so of its refresh tokens.
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// RefreshGrace is how long an already-rotated refresh token still gets
	// the session's current tokens instead of counting as theft; 0 turns
	// the grace off.
	RefreshGrace time.Duration
	// MaxTokenTTL is the longest lifetime any token may have; a retired key
	// stays published this long.
	MaxTokenTTL time.Duration
	// ExtraAlgs are algorithms that need a key besides Alg (for dialects).
	ExtraAlgs []string
	// SymmetricKeys are the HMAC keys of the dialects that sign with one
	// (their Profile.Alg is HS256, HS384 or HS512), at most one each. They
	// are not in the ring (symmetric.go).
	SymmetricKeys []*keys.Symmetric
	// KeyRotationPeriod starts a new signing key when the newest one is
	// this old (0: no automatic rotation); KeyPrepublish is how long the
	// new key is published before it signs.
	KeyRotationPeriod time.Duration
	KeyPrepublish     time.Duration
	// Limits are the lockout and rate-limit settings (the zero value turns
	// both off; DefaultLimits are the server's defaults).
	Limits Limits
	// AuditRetention is how long audit events are kept: the hourly purge
	// deletes older ones (0: keep them forever).
	AuditRetention time.Duration
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer is required"))
	}
	if !keys.ValidAlg(c.Alg) {
		errs = append(errs, fmt.Errorf("unsupported signing algorithm %q", c.Alg))
	}
	for _, a := range c.ExtraAlgs {
		if !keys.ValidAlg(a) {
			errs = append(errs, fmt.Errorf("unsupported signing algorithm %q", a))
		}
	}
	errs = append(errs, validateSymmetric(c.SymmetricKeys)...)
	if c.AccessTTL <= 0 {
		errs = append(errs, errors.New("access token lifetime must be positive"))
	}
	if c.RefreshTTL <= 0 {
		errs = append(errs, errors.New("refresh token lifetime must be positive"))
	}
	if c.RefreshGrace < 0 {
		errs = append(errs, errors.New("refresh grace must not be negative"))
	}
	if c.KeyRotationPeriod < 0 || c.KeyPrepublish < 0 {
		errs = append(errs, errors.New("key rotation period and pre-publication must not be negative"))
	}
	if l := c.Limits; l.LockoutThreshold < 0 || l.RateLimit < 0 || (l.LockoutThreshold > 0 && (l.LockoutBase <= 0 || l.LockoutMax < l.LockoutBase)) || (l.RateLimit > 0 && l.RateWindow <= 0) {
		errs = append(errs, errors.New("lockout and rate limits: threshold and limit must not be negative, base and window positive, max at least base"))
	}
	if c.AuditRetention < 0 {
		errs = append(errs, errors.New("audit retention must not be negative"))
	}
	if c.KeyRotationPeriod > 0 && c.KeyPrepublish >= c.KeyRotationPeriod {
		errs = append(errs, errors.New("key pre-publication must be shorter than the rotation period"))
	}
	return errors.Join(errs...)
}

// Engine runs the grants. Build it with New; Start loads keys and watches
// the store for changes made elsewhere (another node, the CLI).
type Engine struct {
	cfg      Config
	store    tokend.Store
	hasher   *secret.Hasher
	metrics  *metrics.Metrics
	log      *slog.Logger
	now      func() time.Time
	verifier token.Verifier

	vault      *keys.Vault
	auditor    *Auditor
	guard      guard
	pepper     []byte // keys client-secret hashes
	refreshKey []byte // MACs refresh tokens

	ring atomic.Pointer[keys.Ring]

	mu              sync.RWMutex
	clients         map[string]*tokend.ClientApp
	users           map[string]*tokend.User
	revokedTokens   map[string]struct{} // jtis
	revokedSessions map[string]struct{} // session ids
	seq             int64               // last change applied

	feed feedState // the revocation feed (feed.go)
}

// Deps are what the engine works with.
type Deps struct {
	Store  tokend.Store
	Hasher *secret.Hasher
	// Metrics, Log, Now and Vault are optional: no metrics, a discarding
	// logger, time.Now, and no master key.
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Now     func() time.Time
	Vault   *keys.Vault
	// Auditor receives audit events (none are recorded without one).
	Auditor *Auditor
}

// New returns an engine.
func New(cfg Config, d Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Hasher == nil {
		return nil, errors.New("engine needs a store and a hasher")
	}
	now, log := d.Now, d.Log
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxTokenTTL < cfg.AccessTTL {
		cfg.MaxTokenTTL = cfg.AccessTTL
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.Issuer
	}
	return &Engine{
		cfg: cfg, store: d.Store, hasher: d.Hasher, metrics: d.Metrics, log: log, now: now, vault: d.Vault, auditor: d.Auditor,
		guard:         guard{blocked: map[string]time.Time{}},
		verifier:      token.Verifier{Issuer: cfg.Issuer, Audience: cfg.Audience},
		clients:       map[string]*tokend.ClientApp{},
		users:         map[string]*tokend.User{},
		revokedTokens: map[string]struct{}{}, revokedSessions: map[string]struct{}{},
	}, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Now returns the engine's clock reading.
func (e *Engine) Now() time.Time { return e.now() }

// Start seals what the store holds in the clear if there is a master key,
// reads the install's secrets, makes sure every algorithm in use has a
// signing key (generating one on first start) and loads the key ring.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.sealAtRest(ctx); err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	var err error
	if e.pepper, err = e.store.Secret(ctx, "client_secret_pepper", secret.NewKey); err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	// The refresh-token key can forge refresh tokens: sealed under the
	// master key when there is one. (The pepper only keys hashes of
	// 256-bit secrets and need not be.)
	sealed, err := e.store.Secret(ctx, "refresh_token_key", func() ([]byte, error) {
		k, err := secret.NewKey()
		if err != nil {
			return nil, err
		}
		return e.vault.Seal("refresh_token_key", k)
	})
	if err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	if e.refreshKey, err = e.vault.Open("refresh_token_key", sealed); err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	// Note where the change feed stands before loading, so nothing is missed.
	if _, e.seq, err = e.store.Changes(ctx, 0); err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	for _, alg := range e.algs() {
		if err := EnsureKey(ctx, e.store, e.vault, alg, e.now()); err != nil {
			return fmt.Errorf("start engine: %w", err)
		}
	}
	if err := e.loadRevoked(ctx); err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	return e.reloadKeys(ctx)
}

// AddKey generates a key for alg that signs from activatesAt, seals it
// with vault, and adds it as the newest of its line if the line's newest
// key is still afterKid (ECONFLICT otherwise). It returns the new kid.
func AddKey(ctx context.Context, store tokend.Store, vault *keys.Vault, alg string, now, activatesAt time.Time, afterKid string) (string, error) {
	k, err := keys.Generate(alg, now, activatesAt)
	if err != nil {
		return "", err
	}
	if k.PrivateKey, err = vault.Seal(k.ID, k.PrivateKey); err != nil {
		return "", err
	}
	return k.ID, store.AddKey(ctx, k, afterKid)
}

// NewestKid returns the kid of the newest key of alg's line, revoked or
// not ("" for an empty line): what AddKey's compare-and-swap expects.
func NewestKid(stored []*tokend.SigningKey, alg string) string {
	latest := ""
	for _, k := range stored {
		if k.Alg == alg {
			latest = k.ID
		}
	}
	return latest
}

// EnsureKey generates a signing key for alg if its line has no live key.
// When several processes race, one adds the key and the others find it.
func EnsureKey(ctx context.Context, store tokend.Store, vault *keys.Vault, alg string, now time.Time) error {
	for range 3 {
		stored, err := store.ListKeys(ctx)
		if err != nil {
			return err
		}
		for _, k := range stored {
			if k.Alg == alg && k.RevokedAt.IsZero() {
				return nil
			}
		}
		_, err = AddKey(ctx, store, vault, alg, now, now, NewestKid(stored, alg))
		if tokend.ErrorCode(err) != tokend.ECONFLICT {
			return err
		}
	}
	return errors.New("could not add a signing key: too much contention")
}

func (e *Engine) reloadKeys(ctx context.Context) error {
	stored, err := e.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("load keys: %w", err)
	}
	ring, err := keys.NewRing(stored, e.cfg.MaxTokenTTL, e.vault)
	if err != nil {
		return fmt.Errorf("load keys: %w", err)
	}
	e.ring.Store(ring)
	return nil
}

// Ring returns the current key ring.
func (e *Engine) Ring() *keys.Ring { return e.ring.Load() }

// Sync applies the changes recorded since the last call: it drops cached
// client apps and users that changed, notes revoked tokens and sessions,
// and reloads the key ring if a key changed.
func (e *Engine) Sync(ctx context.Context) error {
	e.mu.RLock()
	after := e.seq
	e.mu.RUnlock()
	changes, latest, err := e.store.Changes(ctx, after)
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		return nil
	}
	reload := false
	e.mu.Lock()
	for _, c := range changes {
		switch c.Kind {
		case tokend.ChangeClient:
			delete(e.clients, c.Ref)
		case tokend.ChangeUser:
			delete(e.users, c.Ref)
		case tokend.ChangeToken:
			e.revokedTokens[c.Ref] = struct{}{}
		case tokend.ChangeSession: // recorded only when a session is revoked
			e.revokedSessions[c.Ref] = struct{}{}
		case tokend.ChangeKey:
			reload = true
		}
	}
	e.mu.Unlock()
	if reload {
		if err := e.reloadKeys(ctx); err != nil {
			return err
		}
	}
	e.mu.Lock()
	if latest > e.seq {
		e.seq = latest
	}
	e.mu.Unlock()
	return nil
}

// Watch calls Sync every interval (and whenever wake receives, if not
// nil) until ctx ends, so that a change made by another process takes
// effect here within about one interval. It also rotates keys when due
// (checked every minute) and purges expired state every hour.
func (e *Engine) Watch(ctx context.Context, interval time.Duration, wake <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastPurge, lastRotate time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		if err := e.Sync(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("sync with store failed", "err", err)
		}
		if err := e.syncFeed(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("revocation feed sync failed", "err", err)
		}
		if now := e.now(); now.Sub(lastRotate) >= time.Minute {
			lastRotate = now
			if _, err := e.RotateDueKeys(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("key rotation failed", "err", err)
			}
		}
		if now := e.now(); now.Sub(lastPurge) > time.Hour {
			lastPurge = now
			if err := e.PurgeRevokedSessions(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("purge revoked sessions failed", "err", err)
			}
			if err := e.store.Purge(ctx, now, 24*time.Hour); err != nil && ctx.Err() == nil {
				e.log.Warn("purge failed", "err", err)
			}
			e.purgeAudit(ctx, now)
			if err := e.loadRevoked(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("reload revocations failed", "err", err)
			}
		}
	}
}

// PurgeRevokedSessions forgets the revoked sessions whose every access
// token has expired: those that expired more than MaxTokenTTL ago. An
// access token may outlive its session (it is minted with its own
// lifetime, up to the session's last moment), so forgetting a revocation
// when the session expires would let its last tokens pass again (after a
// restart, which reloads revocations from the store). Every node of one
// deployment should run with the same lifetimes.
func (e *Engine) PurgeRevokedSessions(ctx context.Context) error {
	if err := e.store.PurgeRevokedSessions(ctx, e.now().Add(-e.cfg.MaxTokenTTL)); err != nil {
		return fmt.Errorf("purge revoked sessions: %w", err)
	}
	return nil
}

// client returns a client app, from the cache when it can.
func (e *Engine) client(ctx context.Context, id string) (*tokend.ClientApp, error) {
	e.mu.RLock()
	c, ok := e.clients[id]
	e.mu.RUnlock()
	if ok {
		return c, nil
	}
	e.mu.RLock()
	seq := e.seq
	e.mu.RUnlock()
	c, err := e.store.ClientByID(ctx, id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	// Cache only if no change was applied meanwhile, so a stale read never sticks.
	if e.seq == seq {
		e.clients[id] = c
	}
	e.mu.Unlock()
	return c, nil
}

func (e *Engine) countIssued(grant, dialect string) {
	if e.metrics != nil {
		e.metrics.Issued.WithLabelValues(grant, dialect).Inc()
	}
}

func (e *Engine) countActivity(kind, dialect string) {
	if e.metrics != nil {
		e.metrics.Activity.WithLabelValues(kind, dialect).Inc()
	}
}

// Logger returns the engine's logger, for front ends that log failures.
func (e *Engine) Logger() *slog.Logger { return e.log }

// CountFailure counts a refused request of a front end under its error code.
func (e *Engine) CountFailure(dialect, code string) {
	if e.metrics != nil && code != "" {
		e.metrics.Failures.WithLabelValues(dialect, code).Inc()
	}
}
