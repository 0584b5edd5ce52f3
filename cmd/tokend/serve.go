package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/adminapi"
	"github.com/tokend/tokend/console"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/postgres"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
)

// serveConfig is everything `tokend serve` can be told.
type serveConfig struct {
	addr, db, issuer, audience, alg string
	sqliteSync                      string
	accessTTL, refreshTTL, grace    time.Duration
	keyRotation, keyPrepublish      time.Duration
	argon                           secret.Params
	argonMemory, argonTime          uint
	argonThreads                    uint
	hashWorkers, hashQueue          int
	syncInterval, shutdownTimeout   time.Duration
	auditRetention, auditWindow     time.Duration
	jwksMaxAge                      time.Duration
	logLevel, logFormat             string
	masterKeyFile                   string
	tlsCert, tlsKey                 string
	pprofAddr                       string
	gcFloorMiB                      int
	limits                          grant.Limits
	rateLimit, trustedProxies       string
	proxies                         []netip.Prefix
	dialects                        dialectConfig
	adminAPI                        bool
	console                         bool
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.db, "db", defaultDB, "store: sqlite:PATH or postgres://...")
	fs.StringVar(&c.sqliteSync, "sqlite-synchronous", "normal", "SQLite durability: normal survives a crash of the process, full also a power loss (slower commits)")
	fs.StringVar(&c.issuer, "issuer", "", "issuer URL put in every token (default http://ADDR)")
	fs.StringVar(&c.audience, "audience", "", "audience of access tokens (default: the issuer)")
	fs.StringVar(&c.alg, "alg", "ES256", "default signing algorithm: ES256, EdDSA, RS256 or RS512")
	fs.DurationVar(&c.accessTTL, "access-ttl", 15*time.Minute, "access token lifetime")
	fs.DurationVar(&c.refreshTTL, "refresh-ttl", 30*24*time.Hour, "login session (refresh token) lifetime")
	fs.DurationVar(&c.grace, "refresh-grace", 10*time.Second, "how long a rotated refresh token still returns the current one (0: off)")
	fs.DurationVar(&c.keyRotation, "key-rotation-period", 30*24*time.Hour, "start a new signing key when the newest is this old (0: never)")
	fs.DurationVar(&c.keyPrepublish, "key-prepublish", time.Hour, "how long an automatically rotated key is published before it signs")
	fs.UintVar(&c.argonMemory, "argon2-memory", uint(secret.DefaultParams.MemoryKiB), "argon2id memory for new password hashes, KiB")
	fs.UintVar(&c.argonTime, "argon2-time", uint(secret.DefaultParams.Time), "argon2id passes for new password hashes")
	fs.UintVar(&c.argonThreads, "argon2-threads", uint(secret.DefaultParams.Threads), "argon2id lanes for new password hashes")
	fs.IntVar(&c.hashWorkers, "hash-workers", 0, "password hashes run at once (0: one per core)")
	fs.IntVar(&c.hashQueue, "hash-queue", 0, "password checks that may wait for a worker before 503 (0: 64)")
	fs.DurationVar(&c.syncInterval, "sync-interval", 250*time.Millisecond, "how often to pick up changes made by other processes")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long to finish requests in flight on SIGTERM")
	fs.DurationVar(&c.jwksMaxAge, "jwks-max-age", 5*time.Minute, "Cache-Control max-age of the JWKS")
	fs.DurationVar(&c.auditRetention, "audit-retention", 90*24*time.Hour, "delete audit events older than this (0: keep them forever)")
	fs.DurationVar(&c.auditWindow, "audit-window", grant.DefaultAuditWindow, "merge repeats of a refused request (same event, subject and IP) within this window into one audit row with a count (0: never merge)")
	fs.StringVar(&c.masterKeyFile, "master-key-file", "", "file holding the master key that encrypts signing keys at rest (or set TOKEND_MASTER_KEY)")
	c.limits = grant.DefaultLimits
	fs.IntVar(&c.limits.LockoutThreshold, "lockout-threshold", c.limits.LockoutThreshold, "consecutive failed logins that lock an account (0: never)")
	fs.DurationVar(&c.limits.LockoutBase, "lockout-base", c.limits.LockoutBase, "first lockout; it doubles with each further failure")
	fs.DurationVar(&c.limits.LockoutMax, "lockout-max", c.limits.LockoutMax, "longest lockout")
	fs.StringVar(&c.rateLimit, "rate-limit", "30", "failed credential or token checks per minute from one client IP before it gets 429 (off: no limit)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs of proxies whose X-Forwarded-For names the client IP")
	fs.IntVar(&c.gcFloorMiB, "gc-floor", 64, "MiB the heap may grow to before Go's garbage collector runs (0: Go's own pacing; ignored when GOGC is set): fewer collections, a shorter latency tail, at most this much more memory")
	fs.StringVar(&c.pprofAddr, "pprof-addr", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (off by default; never expose it)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; with --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "the private key of --tls-cert (PEM)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	c.dialects.flags(fs)
	fs.BoolVar(&c.adminAPI, "admin-api", true, "serve the admin API under /admin/v1/ (false: every /admin/v1/ path is 404)")
	fs.BoolVar(&c.console, "console", true, "serve the web console under /console/ (false: every /console/ path is 404)")
}

// validate reports every problem at once.
func (c *serveConfig) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: %v", c.addr, err))
	}
	if err := sqlite.ParseSynchronous(c.sqliteSync); err != nil {
		errs = append(errs, fmt.Errorf("--sqlite-synchronous %q: want normal or full", c.sqliteSync))
	}
	if !keys.ValidAlg(c.alg) {
		errs = append(errs, fmt.Errorf("--alg %q: want ES256, EdDSA, RS256 or RS512", c.alg))
	}
	if c.argonThreads > 255 || c.argonMemory > 4<<20 || c.argonTime > 100 {
		errs = append(errs, errors.New("argon2 parameters out of range"))
	}
	c.argon = secret.Params{MemoryKiB: uint32(c.argonMemory), Time: uint32(c.argonTime), Threads: uint8(c.argonThreads)}
	if err := c.argon.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.syncInterval <= 0 || c.syncInterval > time.Second {
		errs = append(errs, errors.New("--sync-interval must be between 0 and 1s"))
	}
	if c.gcFloorMiB < 0 || c.gcFloorMiB > 1<<20 {
		errs = append(errs, fmt.Errorf("--gc-floor %d: want 0 to %d MiB", c.gcFloorMiB, 1<<20))
	}
	if c.auditRetention < 0 || c.auditWindow < 0 {
		errs = append(errs, errors.New("--audit-retention and --audit-window must not be negative"))
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.logFormat))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel))
	}
	switch n, err := strconv.Atoi(c.rateLimit); {
	case c.rateLimit == "off":
		c.limits.RateLimit = 0
	case err != nil || n < 1:
		errs = append(errs, fmt.Errorf("--rate-limit %q: want a number of failures per minute, or off", c.rateLimit))
	default:
		c.limits.RateLimit = n
	}
	for _, p := range strings.Split(c.trustedProxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			if a, err := netip.ParseAddr(p); err == nil {
				p = netip.PrefixFrom(a, a.BitLen()).String()
			}
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("--trusted-proxies: %q is not an address or CIDR", p))
			continue
		}
		c.proxies = append(c.proxies, prefix.Masked())
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if err := ttlWithinSession("--access-ttl", c.accessTTL, "--refresh-ttl", c.refreshTTL); err != nil {
		errs = append(errs, err)
	}
	if err := c.dialects.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.issuer == "" {
		scheme := "http"
		if c.tlsCert != "" {
			scheme = "https"
		}
		c.issuer = scheme + "://" + c.addr
	}
	if c.audience != "" && c.audience == grant.RefreshAudience(c.issuer) {
		errs = append(errs, fmt.Errorf("--audience %q is the audience of refresh tokens, which access-token checks must refuse: choose another", c.audience))
	}
	return errors.Join(errs...)
}

func (c *serveConfig) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.logLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// api is the HTTP API that serve mounts; the OpenAPI coverage test checks
// the document against its routes.
func (c *serveConfig) api(engine *grant.Engine, store tokend.Store, m *metrics.Metrics, log *slog.Logger) *httpapi.Server {
	routes := c.dialects.routes(engine)
	if c.adminAPI {
		routes = append(routes, adminapi.New(engine))
	}
	if c.console {
		routes = append(routes, console.New(engine, console.Options{Secure: strings.HasPrefix(c.issuer, "https://"), Metrics: m, Log: log}))
	}
	return &httpapi.Server{Engine: engine, Store: store, Metrics: m, Log: log, JWKSMaxAge: c.jwksMaxAge, Routes: routes, TrustedProxies: c.proxies}
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c serveConfig
	var file configFlags
	fs := serveFlags(&c, &file, stderr)
	if _, err := parse(fs, args, 0, ""); err != nil {
		return err
	}
	if err := file.check(fs, &c); err != nil {
		return usageError{err.Error()}
	}
	if file.print {
		return file.printConfig(fs, args, stdout)
	}
	log := c.logger(stderr)
	// The master key first: a weak one is refused before any file is made.
	vault, err := keys.LoadVault(os.Getenv("TOKEND_MASTER_KEY"), c.masterKeyFile)
	if err != nil {
		return usageError{err.Error()}
	}

	defer startHeapFloor(uint64(c.gcFloorMiB) << 20)()
	store, err := openStore(ctx, c.db, sqlite.Synchronous(c.sqliteSync))
	if err != nil {
		return err
	}
	defer store.Close()
	warnLooseFiles(log, store)
	hasher, err := secret.NewHasher(c.argon, c.hashWorkers, c.hashQueue)
	if err != nil {
		return err
	}
	m := metrics.New()
	// The audit trail is written in batches off the request path; it
	// outlives the HTTP server so that the last requests' events are kept.
	auditWindow := c.auditWindow
	if auditWindow == 0 {
		auditWindow = -1 // off
	}
	auditor := grant.NewAuditor(store, log, m, grant.AuditOptions{Window: auditWindow})
	auditCtx, stopAudit := context.WithCancel(context.Background())
	auditDone := make(chan struct{})
	go func() { auditor.Run(auditCtx, 250*time.Millisecond); close(auditDone) }()
	defer func() { stopAudit(); <-auditDone }()
	engine, err := grant.New(grant.Config{
		Issuer: c.issuer, Audience: c.audience, Alg: c.alg,
		AccessTTL: c.accessTTL, RefreshTTL: c.refreshTTL, RefreshGrace: c.grace,
		MaxTokenTTL:       max(c.accessTTL, maxClientAccessTTL, c.dialects.maxTTL()),
		ExtraAlgs:         c.dialects.algs(),
		SymmetricKeys:     c.dialects.symmetric,
		KeyRotationPeriod: c.keyRotation, KeyPrepublish: c.keyPrepublish,
		Limits: c.limits, AuditRetention: c.auditRetention,
	}, grant.Deps{Store: store, Hasher: hasher, Metrics: m, Log: log, Vault: vault, Auditor: auditor})
	if err != nil {
		return usageError{err.Error()}
	}
	if err := engine.Start(ctx); err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	// PostgreSQL tells every node of a change at once; the poll stays as
	// the safety net (and is all SQLite has).
	wake := make(chan struct{}, 1)
	if pg, ok := store.(*postgres.Store); ok {
		pg.Logger = log
		go pg.Listen(watchCtx, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}
	go engine.Watch(watchCtx, c.syncInterval, wake)

	api := c.api(engine, store, m, log)
	for _, r := range api.Routes {
		if s, ok := r.(interface{ Start(context.Context) error }); ok { // the console
			if err := s.Start(watchCtx); err != nil {
				return err
			}
		}
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		ConnContext:       api.ConnContext,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(engine.CloseFeed) // long polls of the revocation feed end at once
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	if c.pprofAddr != "" {
		pm := http.NewServeMux()
		pm.HandleFunc("/debug/pprof/", pprof.Index)
		pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		pm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		// Contention too (/debug/pprof/mutex and /block), sampled: about
		// one in ten contended locks, one event per 100 µs spent blocked.
		runtime.SetMutexProfileFraction(10)
		runtime.SetBlockProfileRate(int(100 * time.Microsecond))
		pln, err := net.Listen("tcp", c.pprofAddr)
		if err != nil {
			return fmt.Errorf("pprof listener: %w", err)
		}
		defer pln.Close()
		go http.Serve(pln, pm)
		log.Warn("profiler listening; do not expose it", "addr", pln.Addr().String())
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	log.Info("tokend listening", "addr", ln.Addr().String(), "issuer", c.issuer, "db", redactDSN(c.db), "alg", c.alg, "dialects", strings.Join(c.dialects.enabled(), ","))
	errc := make(chan error, 1)
	if srv.TLSConfig != nil {
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", c.shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
