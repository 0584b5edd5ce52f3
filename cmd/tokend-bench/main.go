// Command tokend-bench is tokend's load tool. It drives one running tokend
// (any URL) with a fixed number of keep-alive HTTP/1.1 connections, each
// sending requests back to back for a fixed time, and prints requests per
// second, latency percentiles, non-2xx answers by status and transport
// errors, for each scenario: the grants of /oauth2/token, introspection,
// the JWKS and the four vendor dialects.
//
// Each figure comes with a ceiling measured in the same run: a bare
// net/http server started in a child process on 127.0.0.1:0, with no
// tokend code, that answers the same requests by checking the client's
// Basic credentials and signing a JWT of the same size, algorithm and key
// type with the standard library (or verifying one, or serving the same
// JWKS bytes). tokend's figure is printed as a ratio of that ceiling.
// -serve-ceiling serves it on its own, for another load generator (wrk,
// bench/run.sh). For the
// password grant the ceiling is the raw argon2id hash rate of this machine
// at the same parameters, since one login costs one hash.
//
//	tokend-bench -url http://127.0.0.1:8080 -scenario all -c 64 -d 10s
//
// Credentials come from flags or, better (flags show in ps), from the
// environment: every flag has a twin TOKEND_BENCH_ + its name in upper
// case with dashes as underscores (TOKEND_BENCH_CLIENT_SECRET, ...).
// bench/run.sh builds tokend, starts it on a fresh database, provisions the
// credentials and runs every scenario.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Bounds on what one invocation may do, so that a typo cannot turn the
// tool into a flood.
const (
	maxConcurrency = 4096
	maxDuration    = 10 * time.Minute
	maxWarmup      = time.Minute
	maxTimeout     = time.Minute
)

// config is everything tokend-bench can be told.
type config struct {
	url       string
	scenarios string
	c         int
	d, warmup time.Duration
	timeout   time.Duration
	ceiling   bool
	repeat    int

	ceilingInProcess bool
	serveCeiling     string // -serve-ceiling: an address, or "" to measure
	ceilingGCFloor   int    // MiB
	json             bool
	creds            creds
	argon            argonParams
	argonMem         uint
	argonTime        uint
	argonLanes       uint

	base string // url without a trailing slash
	list []*scenario
}

// creds are the credentials the scenarios log in with.
type creds struct {
	clientID, clientSecret string // a confidential client: client_credentials (and taiki)
	publicClientID         string // a public client: password and refresh_token
	username, password     string // a user
}

func (c *config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "base URL of the tokend under test")
	fs.StringVar(&c.scenarios, "scenario", "all", "scenarios to run, comma-separated: "+strings.Join(scenarioNames(), ", ")+", or all")
	fs.IntVar(&c.c, "c", 64, "concurrency: connections, each with one worker sending requests back to back")
	fs.DurationVar(&c.d, "d", 10*time.Second, "measured duration of each run")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "warm-up before each measured run, not counted")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.BoolVar(&c.ceiling, "ceiling", true, "also measure the in-process ceiling and print tokend's figures as a ratio of it")
	fs.BoolVar(&c.json, "json", false, "print one JSON object per scenario")
	fs.BoolVar(&c.ceilingInProcess, "ceiling-in-process", false, "run the ceiling server inside this process instead of a process of its own (as tokend is)")
	fs.IntVar(&c.ceilingGCFloor, "ceiling-gc-floor", 64, "MiB the ceiling's heap may grow to before its collector runs, as tokend serve's --gc-floor (0: Go's default; GOGC in the environment wins)")
	fs.StringVar(&c.serveCeiling, "serve-ceiling", "", "instead of measuring, serve the ceiling of the one -scenario named on this address (e.g. 127.0.0.1:0) for another load generator such as wrk; prints one JSON line (url, and the token to introspect) and serves until interrupted")
	fs.IntVar(&c.repeat, "repeat", 1, "measure tokend and the ceiling this many times, alternately, and report the run with the median ratio (for noisy machines)")
	fs.StringVar(&c.creds.clientID, "client-id", "", "confidential client id (client_credentials, introspect, taiki)")
	fs.StringVar(&c.creds.clientSecret, "client-secret", "", "its secret (prefer TOKEND_BENCH_CLIENT_SECRET)")
	fs.StringVar(&c.creds.publicClientID, "public-client-id", "", "public client id (password, refresh_token)")
	fs.StringVar(&c.creds.username, "username", "", "user name (password, refresh_token, atoti, simplejwt, ocm)")
	fs.StringVar(&c.creds.password, "password", "", "the user's password (prefer TOKEND_BENCH_PASSWORD)")
	fs.UintVar(&c.argonMem, "argon2-memory", 19456, "argon2id memory of the password ceiling, KiB (tokend's --argon2-memory)")
	fs.UintVar(&c.argonTime, "argon2-time", 2, "argon2id passes of the password ceiling (tokend's --argon2-time)")
	fs.UintVar(&c.argonLanes, "argon2-threads", 1, "argon2id lanes of the password ceiling (tokend's --argon2-threads)")
}

// validate reports every problem at once.
func (c *config) validate() error {
	var errs []error
	if c.repeat < 1 || c.repeat > 20 {
		errs = append(errs, fmt.Errorf("-repeat %d: want 1 to 20", c.repeat))
	}
	u, err := url.Parse(c.url)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("-url %q: %v", c.url, err))
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		errs = append(errs, fmt.Errorf("-url %q: want http://HOST[:PORT] or https://...", c.url))
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		errs = append(errs, fmt.Errorf("-url %q: no query, fragment or user info", c.url))
	default:
		c.base = strings.TrimSuffix(u.String(), "/")
	}
	if c.ceilingGCFloor < 0 || c.ceilingGCFloor > 1<<20 {
		errs = append(errs, fmt.Errorf("-ceiling-gc-floor %d: want 0 to %d MiB", c.ceilingGCFloor, 1<<20))
	}
	if c.c < 1 || c.c > maxConcurrency {
		errs = append(errs, fmt.Errorf("-c %d: want 1 to %d", c.c, maxConcurrency))
	}
	if c.d <= 0 || c.d > maxDuration {
		errs = append(errs, fmt.Errorf("-d %s: want more than 0 and at most %s", c.d, maxDuration))
	}
	if c.warmup < 0 || c.warmup > maxWarmup {
		errs = append(errs, fmt.Errorf("-warmup %s: want 0 to %s", c.warmup, maxWarmup))
	}
	if c.timeout <= 0 || c.timeout > maxTimeout {
		errs = append(errs, fmt.Errorf("-timeout %s: want more than 0 and at most %s", c.timeout, maxTimeout))
	}
	if c.argonMem < 8 || c.argonMem > 4<<20 || c.argonTime < 1 || c.argonTime > 100 || c.argonLanes < 1 || c.argonLanes > 255 || c.argonMem < 8*c.argonLanes {
		errs = append(errs, errors.New("-argon2-*: want memory 8 KiB per lane to 4 GiB, 1 to 100 passes, 1 to 255 lanes"))
	}
	c.argon = argonParams{memoryKiB: uint32(c.argonMem), time: uint32(c.argonTime), threads: uint8(c.argonLanes)}
	list, err := selectScenarios(c.scenarios)
	if err != nil {
		errs = append(errs, err)
	}
	c.list = list
	if c.serveCeiling != "" && (len(list) != 1 || list[0].ceiling == ceilArgon2) {
		errs = append(errs, errors.New("-serve-ceiling: name one -scenario that has a ceiling server (not a password scenario)"))
	}
	// A scenario named on its own must be runnable; "all" skips the ones
	// whose credentials are missing, and says so.
	if c.scenarios != "all" {
		for _, s := range list {
			if missing := s.missing(c.creds); len(missing) > 0 {
				errs = append(errs, fmt.Errorf("scenario %s needs %s", s.name, strings.Join(missing, ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

const usage = `tokend-bench: load tool for tokend

Usage:
  tokend-bench [-url URL] [-scenario NAME[,NAME...]|all] [-c N] [-d D] [-warmup D] [-json] [-ceiling=false]
               [-client-id ID] [-client-secret S] [-public-client-id ID] [-username U] [-password P]
  tokend-bench -serve-ceiling ADDR -scenario NAME [-url URL] [credentials]

Every flag has an environment twin: -client-secret is TOKEND_BENCH_CLIENT_SECRET,
-password is TOKEND_BENCH_PASSWORD, and so on; prefer them for secrets.
bench/run.sh starts a fresh tokend, provisions it and runs every scenario.

Flags:
`

// usageError is wrong usage: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// errSomeFailed means some scenario could not be measured; it was reported.
var errSomeFailed = errors.New("some scenarios could not run")

func main() {
	if len(os.Args) == 2 && os.Args[1] == ceilingChildArg {
		if err := ceilingChild(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "tokend-bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "tokend-bench: %s\nRun 'tokend-bench -h' for usage.\n", ue.msg)
		os.Exit(2)
	case errors.Is(err, errSomeFailed):
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "tokend-bench: %v\n", err)
		os.Exit(1)
	}
}

// run is main without the process around it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("tokend-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	c.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if err := fromEnv(fs); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return usageError{err.Error()}
	}
	if c.serveCeiling != "" {
		return serveCeiling(ctx, &c, stdout)
	}
	b := &bench{cfg: &c, out: newReporter(stdout, c.json)}
	return b.run(ctx)
}

// fromEnv fills each flag not given from its twin TOKEND_BENCH_<NAME>.
func fromEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := "TOKEND_BENCH_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", env, err))
			}
		}
	})
	if len(errs) > 0 {
		return usageError{errors.Join(errs...).Error()}
	}
	return nil
}

// bench runs the selected scenarios one after another.
type bench struct {
	cfg *config
	out *reporter
	// argon is the password ceiling, measured once per invocation.
	argon *result
}

func (b *bench) run(ctx context.Context) error {
	b.out.header(b.cfg, runtime.GOMAXPROCS(0))
	failed := false
	for _, s := range b.cfg.list {
		rep := b.scenario(ctx, s)
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		if rep.Error != "" {
			failed = true
		}
		b.out.scenario(rep)
	}
	if failed {
		return errSomeFailed
	}
	return nil
}

// scenario sets s up against tokend, loads tokend, then loads the ceiling.
func (b *bench) scenario(ctx context.Context, s *scenario) *report {
	cfg := b.cfg
	rep := &report{Scenario: s.name, Method: s.method, Path: s.path, URL: cfg.base,
		Concurrency: cfg.c, DurationS: cfg.d.Seconds(), WarmupS: cfg.warmup.Seconds()}
	if missing := s.missing(cfg.creds); len(missing) > 0 {
		rep.Error = "skipped: needs " + strings.Join(missing, ", ")
		return rep
	}
	lc := loadConfig{concurrency: cfg.c, warmup: cfg.warmup, duration: cfg.d}

	tokend := newTarget(cfg.base, cfg.c, cfg.timeout)
	defer tokend.close()
	p, err := s.prepare(ctx, tokend, cfg.creds, cfg.c)
	if err != nil {
		rep.Error = "setup: " + err.Error()
		return rep
	}
	rep.Tokend = runLoad(ctx, lc, s.calls(p, tokend, cfg.c)).summary()
	if !cfg.ceiling || ctx.Err() != nil {
		return rep
	}

	if s.ceiling == ceilArgon2 || s.userPassword {
		if b.argon == nil {
			b.argon = argon2Load(ctx, cfg.argon, lc, runtime.GOMAXPROCS(0))
		}
		rep.Argon2 = newArgonReport(cfg.argon, runtime.GOMAXPROCS(0), b.argon.summary(), rep.Tokend)
	}
	if s.ceiling == ceilArgon2 {
		return rep
	}
	start := startCeilingProcess
	if cfg.ceilingInProcess {
		start = startCeiling
	}
	ceil, err := start(ceilingSpec{Kind: s.ceiling, Sample: p.sample, Header: p.sampleHeader, Auth: p.req.auth, GCFloorMiB: cfg.ceilingGCFloor})
	if err != nil {
		rep.CeilingError = err.Error()
		return rep
	}
	defer ceil.close()
	target := newTarget(ceil.url, cfg.c, cfg.timeout)
	defer target.close()
	cp := *p
	if s.ceiling == ceilIntrospect {
		cp.req = introspectRequest(cfg.creds, ceil.token)
	}
	rep.Ceiling = runLoad(ctx, lc, s.calls(&cp, target, cfg.c)).summary()
	// With -repeat, tokend and the ceiling are measured again, alternately,
	// and the pair with the median ratio is reported, all ratios beside it.
	type pair struct{ t, c *summary }
	pairs := []pair{{rep.Tokend, rep.Ceiling}}
	for i := 1; i < cfg.repeat && ctx.Err() == nil; i++ {
		// A fresh plan: stateful scenarios (refresh_token) must not replay
		// tokens the last run already rotated.
		fresh, err := s.prepare(ctx, tokend, cfg.creds, cfg.c)
		if err != nil {
			break
		}
		t := runLoad(ctx, lc, s.calls(fresh, tokend, cfg.c)).summary()
		c := runLoad(ctx, lc, s.calls(&cp, target, cfg.c)).summary()
		pairs = append(pairs, pair{t, c})
	}
	sort.Slice(pairs, func(i, j int) bool {
		return ratio(pairs[i].t.OKPerSec, pairs[i].c.OKPerSec) < ratio(pairs[j].t.OKPerSec, pairs[j].c.OKPerSec)
	})
	med := pairs[len(pairs)/2]
	rep.Tokend, rep.Ceiling = med.t, med.c
	rep.Ratio = &ratioReport{
		OKPerSec:     ratio(rep.Tokend.OKPerSec, rep.Ceiling.OKPerSec),
		P99TokendMS:  rep.Tokend.Latency.P99,
		P99CeilingMS: rep.Ceiling.Latency.P99,
		TokenBytes:   ceil.tokenBytes,
		CeilingDoes:  ceil.describe,
	}
	if len(pairs) > 1 {
		for _, pr := range pairs {
			rep.Ratio.Runs = append(rep.Ratio.Runs, ratio(pr.t.OKPerSec, pr.c.OKPerSec))
		}
	}
	return rep
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func scenarioNames() []string {
	var out []string
	for _, s := range scenarios {
		out = append(out, s.name)
	}
	return out
}

// selectScenarios parses -scenario.
func selectScenarios(v string) ([]*scenario, error) {
	if strings.TrimSpace(v) == "all" {
		return scenarios, nil
	}
	var out []*scenario
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		i := slices.IndexFunc(scenarios, func(s *scenario) bool { return s.name == n })
		if i < 0 {
			return nil, fmt.Errorf("-scenario: unknown scenario %q (want %s or all)", n, strings.Join(scenarioNames(), ", "))
		}
		if !slices.Contains(out, scenarios[i]) {
			out = append(out, scenarios[i])
		}
	}
	return out, nil
}
