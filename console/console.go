// Package console serves tokend's web console at /console/: a few
// server-rendered pages (html/template, embedded with the binary, with one
// small plain-JavaScript file and no inline script) where an administrator
// signs in with a password and manages users, client apps, sessions, keys
// and the audit trail. It is a front end of the engine's grant.Manager, as
// the admin API and the CLI are, so the same validation and audit rules
// hold; what it adds is the browser's part: cookie sign-ins kept in the
// store (so that they hold across nodes), CSRF tokens on every form,
// confirmation before anything destructive, a strict Content-Security-Policy,
// and the first-run setup link that creates the first administrator.
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/metrics"
)

// Prefix is where the console is served.
const Prefix = "/console/"

// Dialect names the console in audit events.
const Dialect = "console"

// Defaults of Options.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	DefaultSetupTTL        = time.Hour
)

// Options tune a Console; the zero value is the defaults.
type Options struct {
	// IdleTimeout ends a sign-in that made no request for this long;
	// AbsoluteTimeout ends it this long after it began, however active.
	IdleTimeout, AbsoluteTimeout time.Duration
	// SetupTTL is how long a first-run setup link is valid.
	SetupTTL time.Duration
	// Secure gives cookies the Secure flag and the __Host- prefix even on
	// requests that arrive without TLS (behind a proxy that ends TLS);
	// requests over TLS get them anyway.
	Secure bool
	// BaseURL is the URL the console is reached at, without /console/
	// (the setup link in the log starts with it): the issuer, usually.
	BaseURL string
	// Metrics feed the overview's chart of tokens issued and failures per
	// minute; nil: no chart.
	Metrics *metrics.Metrics
	// Now is the clock; nil: the engine's.
	Now func() time.Time
	// Log receives what cannot be shown; nil: the engine's logger.
	Log *slog.Logger
}

// Console serves the web console. Mount it with Register (it is an
// httpapi.Routes) and call Start once the server runs.
type Console struct {
	engine *grant.Engine
	mgr    *grant.Manager
	store  tokend.Store
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	pages  *pages
	rates  *rates
	cop    *http.CrossOriginProtection
}

var _ httpapi.Routes = (*Console)(nil)

// New returns the console of an engine. Its changes go through a copy of
// the engine's Manager that names the console in audit events.
func New(e *grant.Engine, opts Options) *Console {
	m := *e.Manager()
	m.Dialect = Dialect
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.AbsoluteTimeout <= 0 {
		opts.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	if opts.SetupTTL <= 0 {
		opts.SetupTTL = DefaultSetupTTL
	}
	if opts.BaseURL == "" {
		opts.BaseURL = e.Config().Issuer
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	c := &Console{engine: e, mgr: &m, store: m.Store, opts: opts, log: opts.Log, now: opts.Now, pages: mustParsePages()}
	if c.log == nil {
		c.log = e.Logger()
	}
	if c.now == nil {
		c.now = e.Now
	}
	m.Now = c.now
	c.rates = newRates(opts.Metrics)
	c.cop = http.NewCrossOriginProtection()
	c.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, errCrossOrigin)
	}))
	return c
}

// Start logs a setup link when no enabled user has the role tokend.admin
// (the first start of a new install), and samples the counters of the
// overview's chart every few seconds until ctx ends.
func (c *Console) Start(ctx context.Context) error {
	has, err := c.hasAdmin(ctx)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if !has {
		link, expires, err := c.NewSetupLink(ctx)
		if err != nil {
			return fmt.Errorf("console: %w", err)
		}
		c.log.Warn("no console administrator yet: open this one-time link within the hour to create one (or run: tokend user add NAME --role "+grant.RoleAdmin+")",
			"setup_url", link, "expires_at", expires.UTC().Format(time.RFC3339))
	}
	if c.rates != nil {
		go c.rates.run(ctx, c.now, 5*time.Second)
	}
	return nil
}

// NewSetupLink stores a new one-time setup token, valid for SetupTTL, and
// returns the link that carries it.
func (c *Console) NewSetupLink(ctx context.Context) (string, time.Time, error) {
	tok := randomToken()
	expires := c.now().Add(c.opts.SetupTTL)
	if err := c.store.CreateSetupToken(ctx, hashToken(tok), expires); err != nil {
		return "", time.Time{}, fmt.Errorf("create setup link: %w", err)
	}
	return c.opts.BaseURL + Prefix + "setup?token=" + tok, expires, nil
}

// hasAdmin reports whether some enabled user (of no client app) has the
// role tokend.admin.
func (c *Console) hasAdmin(ctx context.Context) (bool, error) {
	none, no := "", false
	l, err := c.mgr.Users(ctx, tokend.UserQuery{ClientID: &none, Disabled: &no, Role: grant.RoleAdmin, Limit: 1})
	if err != nil {
		return false, fmt.Errorf("look for an administrator: %w", err)
	}
	return len(l) > 0, nil
}

// randomToken returns 256 random bits, base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is what the store keeps of a token.
func hashToken(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}
