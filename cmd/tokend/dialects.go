package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tokend/tokend/dialect"
	"github.com/tokend/tokend/dialect/atoti"
	"github.com/tokend/tokend/dialect/ocm"
	"github.com/tokend/tokend/dialect/simplejwt"
	"github.com/tokend/tokend/dialect/taiki"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/keys"
)

// dialectConfig is the vendor dialects' part of `tokend serve`'s settings;
// each starts from the dialect's own defaults (shared/spec/dialects.md).
type dialectConfig struct {
	list      string
	atoti     atoti.Config
	simplejwt simplejwt.Config
	ocm       ocm.Config
	taiki     taiki.Config

	// The files of the symmetric keys (the keys themselves may come from
	// the environment instead), and the keys validate loaded.
	simplejwtKeyFile, taikiKeyFile string
	symmetric                      []*keys.Symmetric
}

func (d *dialectConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&d.list, "dialects", strings.Join(dialect.All, ","), "vendor dialects to serve, comma-separated (empty: none)")
	d.atoti, d.simplejwt, d.ocm, d.taiki = atoti.DefaultConfig, simplejwt.DefaultConfig, ocm.DefaultConfig, taiki.DefaultConfig
	fs.StringVar(&d.atoti.Alg, "atoti-alg", d.atoti.Alg, "atoti: signing algorithm")
	fs.DurationVar(&d.atoti.TTL, "atoti-ttl", d.atoti.TTL, "atoti: token lifetime")
	fs.StringVar(&d.simplejwt.Alg, "simplejwt-alg", "", "simplejwt: signing algorithm (default: --alg); HS256, HS384 or HS512 sign with the key of --simplejwt-signing-key-file")
	fs.StringVar(&d.simplejwtKeyFile, "simplejwt-signing-key-file", "", "simplejwt: file holding the HMAC key of an HS algorithm, e.g. the Django services' SIGNING_KEY (or set TOKEND_SIMPLEJWT_SIGNING_KEY)")
	fs.IntVar(&d.simplejwt.ObtainStatus, "simplejwt-obtain-status", d.simplejwt.ObtainStatus, "simplejwt: status of a refused login at obtain: 400 (AISquare) or 401 (stock simplejwt)")
	fs.StringVar(&d.simplejwt.UserIDClaim, "simplejwt-user-id-claim", "", "simplejwt: name of the user_id claim (USER_ID_CLAIM)")
	fs.StringVar(&d.simplejwt.TokenTypeClaim, "simplejwt-token-type-claim", "", "simplejwt: name of the token_type claim (TOKEN_TYPE_CLAIM)")
	fs.DurationVar(&d.simplejwt.AccessTTL, "simplejwt-access-ttl", d.simplejwt.AccessTTL, "simplejwt: access token lifetime")
	fs.DurationVar(&d.simplejwt.RefreshTTL, "simplejwt-refresh-ttl", d.simplejwt.RefreshTTL, "simplejwt: refresh token lifetime")
	fs.BoolVar(&d.simplejwt.Rotate, "simplejwt-rotate", d.simplejwt.Rotate, "simplejwt: rotate refresh tokens (ROTATE_REFRESH_TOKENS)")
	fs.StringVar(&d.ocm.Alg, "ocm-alg", "", "ocm: signing algorithm (default: --alg)")
	fs.DurationVar(&d.ocm.AccessTTL, "ocm-access-ttl", d.ocm.AccessTTL, "ocm: access token lifetime")
	fs.DurationVar(&d.ocm.RefreshTTL, "ocm-refresh-ttl", d.ocm.RefreshTTL, "ocm: refresh token (session) lifetime")
	fs.StringVar(&d.taiki.Alg, "taiki-alg", "", "taiki: signing algorithm (default: --alg); HS256, HS384 or HS512 sign with the key of --taiki-signing-key-file")
	fs.StringVar(&d.taikiKeyFile, "taiki-signing-key-file", "", "taiki: file holding the HMAC key of an HS algorithm (or set TOKEND_TAIKI_SIGNING_KEY)")
	fs.StringVar(&d.taiki.UserIDClaim, "taiki-user-id-claim", "", "taiki: name of the taiki_user_id claim")
	fs.StringVar(&d.taiki.TokenTypeClaim, "taiki-token-type-claim", "", "taiki: name of the token_type claim")
	fs.DurationVar(&d.taiki.TTL, "taiki-ttl", d.taiki.TTL, "taiki: token lifetime")
	fs.StringVar(&d.taiki.SandboxPrefix, "taiki-sandbox-prefix", "", "taiki: serve sandbox apps at PREFIX/api/token")
	fs.StringVar(&d.taiki.SandboxHost, "taiki-sandbox-host", "", "taiki: requests to this host are sandbox requests")
	fs.StringVar(&d.taiki.ProductionPrefix, "taiki-production-prefix", "", "taiki: serve production apps at PREFIX/api/token")
	fs.StringVar(&d.taiki.ProductionHost, "taiki-production-host", "", "taiki: requests to this host are production requests")
	fs.IntVar(&d.taiki.MaxUsersPerApp, "taiki-max-users-per-app", d.taiki.MaxUsersPerApp, "taiki: end users one client app may have (0: no cap)")
	fs.IntVar(&d.taiki.UserRate, "taiki-user-rate", d.taiki.UserRate, "taiki: end users one client app may create per minute, all at once if it likes (0: no limit)")
}

// enabled returns the dialects switched on.
func (d *dialectConfig) enabled() []string {
	var out []string
	for _, n := range strings.Split(d.list, ",") {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (d *dialectConfig) on(name string) bool { return slices.Contains(d.enabled(), name) }

func (d *dialectConfig) validate() error {
	var errs []error
	for _, n := range d.enabled() {
		if !slices.Contains(dialect.All, n) {
			errs = append(errs, fmt.Errorf("--dialects: unknown dialect %q (want some of %s)", n, strings.Join(dialect.All, ",")))
		}
	}
	for _, a := range []struct{ flag, alg string }{
		{"--atoti-alg", d.atoti.Alg}, {"--ocm-alg", d.ocm.Alg},
	} {
		if a.alg != "" && !keys.ValidAlg(a.alg) {
			errs = append(errs, fmt.Errorf("%s %q: want ES256, EdDSA, RS256 or RS512", a.flag, a.alg))
		}
	}
	for _, a := range []struct{ flag, alg string }{
		{"--simplejwt-alg", d.simplejwt.Alg}, {"--taiki-alg", d.taiki.Alg},
	} {
		if a.alg != "" && !keys.ValidAlg(a.alg) && !keys.IsSymmetric(a.alg) {
			errs = append(errs, fmt.Errorf("%s %q: want ES256, EdDSA, RS256, RS512, or HS256, HS384, HS512 with a signing key", a.flag, a.alg))
		}
	}
	if err := d.simplejwt.Validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, d.loadSymmetric(os.Getenv)...)
	for _, l := range []struct {
		flag string
		ttl  time.Duration
	}{
		{"--atoti-ttl", d.atoti.TTL}, {"--simplejwt-access-ttl", d.simplejwt.AccessTTL}, {"--simplejwt-refresh-ttl", d.simplejwt.RefreshTTL},
		{"--ocm-access-ttl", d.ocm.AccessTTL}, {"--ocm-refresh-ttl", d.ocm.RefreshTTL}, {"--taiki-ttl", d.taiki.TTL},
	} {
		if l.ttl <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", l.flag))
		}
	}
	// Atoti and taiki tokens belong to no session.
	for _, l := range []struct {
		accessFlag  string
		access      time.Duration
		sessionFlag string
		session     time.Duration
	}{
		{"--simplejwt-access-ttl", d.simplejwt.AccessTTL, "--simplejwt-refresh-ttl", d.simplejwt.RefreshTTL},
		{"--ocm-access-ttl", d.ocm.AccessTTL, "--ocm-refresh-ttl", d.ocm.RefreshTTL},
	} {
		if err := ttlWithinSession(l.accessFlag, l.access, l.sessionFlag, l.session); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.taiki.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// loadSymmetric loads the symmetric key of each enabled dialect that signs
// with an HS algorithm, from its environment variable or its file, into
// d.symmetric. A key given to a dialect that does not sign with one is a
// mistake, and refused. Errors never show a key.
func (d *dialectConfig) loadSymmetric(getenv func(string) string) []error {
	var errs []error
	d.symmetric = nil
	for _, s := range []struct{ name, alg, file string }{
		{dialect.SimpleJWT, d.simplejwt.Alg, d.simplejwtKeyFile},
		{dialect.Taiki, d.taiki.Alg, d.taikiKeyFile},
	} {
		env := "TOKEND_" + strings.ToUpper(s.name) + "_SIGNING_KEY"
		given := getenv(env) != "" || s.file != ""
		switch {
		case !d.on(s.name):
		case !keys.IsSymmetric(s.alg):
			if given {
				errs = append(errs, fmt.Errorf("--%s-signing-key-file or %s is for --%s-alg HS256, HS384 or HS512 only; %s signs with %s", s.name, env, s.name, s.name, cmp.Or(s.alg, "--alg")))
			}
		default:
			k, err := keys.LoadSymmetric(s.name, s.alg, getenv(env), s.file)
			if err != nil {
				errs = append(errs, fmt.Errorf("--%s-alg %s: %w (--%s-signing-key-file or %s)", s.name, s.alg, err, s.name, env))
				continue
			}
			d.symmetric = append(d.symmetric, k)
		}
	}
	return errs
}

// algs lists the algorithms the enabled dialects sign with from the key
// ring, besides the default, so that the engine has a key for each (the
// HS algorithms sign with the dialect's own key, never the ring's).
func (d *dialectConfig) algs() []string {
	var out []string
	for name, alg := range map[string]string{dialect.Atoti: d.atoti.Alg, dialect.SimpleJWT: d.simplejwt.Alg, dialect.OCM: d.ocm.Alg, dialect.Taiki: d.taiki.Alg} {
		if d.on(name) && alg != "" && !keys.IsSymmetric(alg) && !slices.Contains(out, alg) {
			out = append(out, alg)
		}
	}
	slices.Sort(out)
	return out
}

// maxTTL is the longest lifetime of any JWT an enabled dialect signs
// (simplejwt's refresh tokens are JWTs too), so that a retired key stays
// published as long as its tokens live.
func (d *dialectConfig) maxTTL() time.Duration {
	var m time.Duration
	for name, ttl := range map[string]time.Duration{
		dialect.Atoti: d.atoti.TTL, dialect.SimpleJWT: max(d.simplejwt.AccessTTL, d.simplejwt.RefreshTTL),
		dialect.OCM: d.ocm.AccessTTL, dialect.Taiki: d.taiki.TTL,
	} {
		if d.on(name) {
			m = max(m, ttl)
		}
	}
	return m
}

// routes builds the enabled dialects' endpoints on engine.
func (d *dialectConfig) routes(engine *grant.Engine) []httpapi.Routes {
	var out []httpapi.Routes
	if d.on(dialect.Atoti) {
		out = append(out, atoti.New(engine, d.atoti))
	}
	if d.on(dialect.SimpleJWT) {
		out = append(out, simplejwt.New(engine, d.simplejwt))
	}
	if d.on(dialect.OCM) {
		out = append(out, ocm.New(engine, d.ocm))
	}
	if d.on(dialect.Taiki) {
		out = append(out, taiki.New(engine, d.taiki))
	}
	return out
}

// ttlWithinSession refuses an access-token lifetime longer than the
// lifetime of the session (refresh token) its tokens belong to. The
// session is how long a login lasts; a token minted at login would outlive
// it, which is almost certainly a mistake (swapped flags, say). tokend
// still keeps a session's revocation until its last token has expired,
// whatever the lifetimes (grant.Engine.PurgeRevokedSessions).
func ttlWithinSession(accessFlag string, access time.Duration, sessionFlag string, session time.Duration) error {
	if access > 0 && session > 0 && access > session {
		return fmt.Errorf("%s %s is longer than %s %s: an access token must not outlive its session (refresh token); shorten %s or lengthen %s",
			accessFlag, access, sessionFlag, session, accessFlag, sessionFlag)
	}
	return nil
}
