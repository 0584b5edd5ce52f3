package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokend/tokend/dialect"
	"github.com/tokend/tokend/dialect/atoti"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/keys"
)

// dialectConfig is the vendor dialects' part of `tokend serve`'s settings.
type dialectConfig struct {
	list  string
	atoti atoti.Config
}

func (d *dialectConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&d.list, "dialects", strings.Join(dialect.All, ","), "vendor dialects to serve, comma-separated (empty: none)")
	d.atoti = atoti.DefaultConfig
	fs.StringVar(&d.atoti.Alg, "atoti-alg", d.atoti.Alg, "atoti: signing algorithm")
	fs.DurationVar(&d.atoti.TTL, "atoti-ttl", d.atoti.TTL, "atoti: token lifetime")
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

func (d *dialectConfig) validate() error {
	var errs []error
	for _, n := range d.enabled() {
		if !slices.Contains(dialect.All, n) {
			errs = append(errs, fmt.Errorf("--dialects: unknown dialect %q (want some of %s)", n, strings.Join(dialect.All, ",")))
		}
	}
	for name, alg := range map[string]string{"--atoti-alg": d.atoti.Alg} {
		if alg != "" && !keys.ValidAlg(alg) {
			errs = append(errs, fmt.Errorf("%s %q: want ES256, EdDSA, RS256 or RS512", name, alg))
		}
	}
	for name, ttl := range map[string]time.Duration{"--atoti-ttl": d.atoti.TTL} {
		if ttl <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	return errors.Join(errs...)
}

func (d *dialectConfig) on(name string) bool { return slices.Contains(d.enabled(), name) }

// algs lists the algorithms the enabled dialects sign with besides the default.
func (d *dialectConfig) algs() []string {
	var out []string
	if d.on(dialect.Atoti) && d.atoti.Alg != "" {
		out = append(out, d.atoti.Alg)
	}
	return out
}

// maxTTL is the longest lifetime of any token an enabled dialect signs.
func (d *dialectConfig) maxTTL() time.Duration {
	var m time.Duration
	if d.on(dialect.Atoti) {
		m = max(m, d.atoti.TTL)
	}
	return m
}

// routes builds the enabled dialects' endpoints on engine.
func (d *dialectConfig) routes(engine *grant.Engine) []httpapi.Routes {
	var out []httpapi.Routes
	if d.on(dialect.Atoti) {
		out = append(out, atoti.New(engine, d.atoti))
	}
	return out
}
