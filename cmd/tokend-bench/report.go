package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// report is one scenario's figures; with -json it is printed as one JSON
// object per line.
type report struct {
	Scenario    string  `json:"scenario"`
	Method      string  `json:"method"`
	Path        string  `json:"path"`
	URL         string  `json:"url"`
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	// Error says why the scenario could not be measured.
	Error        string       `json:"error,omitempty"`
	Tokend       *summary     `json:"tokend,omitempty"`
	Ceiling      *summary     `json:"ceiling,omitempty"`
	CeilingError string       `json:"ceiling_error,omitempty"`
	Ratio        *ratioReport `json:"ratio,omitempty"`
	Argon2       *argonReport `json:"argon2,omitempty"`
}

// ratioReport compares tokend with the ceiling server.
type ratioReport struct {
	// OKPerSec is tokend's 2xx answers per second over the ceiling's.
	OKPerSec     float64        `json:"ok_per_sec"`
	P99TokendMS  float64        `json:"p99_tokend_ms"`
	P99CeilingMS float64        `json:"p99_ceiling_ms"`
	TokenBytes   map[string]int `json:"token_bytes,omitempty"`
	CeilingDoes  string         `json:"ceiling_does"`
	// Runs are every run's ratio, lowest first, with -repeat.
	Runs []float64 `json:"runs,omitempty"`
}

// argonReport is the password ceiling: the raw argon2id hash rate.
type argonReport struct {
	Params       string    `json:"params"`
	Goroutines   int       `json:"goroutines"`
	Hashes       int       `json:"hashes"`
	HashesPerSec float64   `json:"hashes_per_sec"`
	Latency      latencies `json:"latency_ms"`
	// Ratio is tokend's successful logins per second over hashes per second.
	Ratio float64 `json:"ratio"`
}

func newArgonReport(p argonParams, goroutines int, s, tokend *summary) *argonReport {
	return &argonReport{
		Params: p.String(), Goroutines: goroutines, Hashes: s.OK, HashesPerSec: s.OKPerSec,
		Latency: s.Latency, Ratio: ratio(tokend.OKPerSec, s.OKPerSec),
	}
}

// reporter prints reports as text for a person or JSON lines for a script.
type reporter struct {
	w    io.Writer
	json bool
}

func newReporter(w io.Writer, asJSON bool) *reporter { return &reporter{w: w, json: asJSON} }

func (r *reporter) header(c *config, procs int) {
	if r.json {
		return
	}
	ceil := "on"
	if !c.ceiling {
		ceil = "off"
	}
	fmt.Fprintf(r.w, "tokend-bench  url=%s  c=%d  d=%s  warmup=%s  GOMAXPROCS=%d  ceiling=%s\n", c.base, c.c, c.d, c.warmup, procs, ceil)
	fmt.Fprintf(r.w, "ok/s counts 2xx answers; latency percentiles are of 2xx answers.\n")
}

func (r *reporter) scenario(rep *report) {
	if r.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(r.w, "%s\n", b)
		return
	}
	fmt.Fprintf(r.w, "\n%s  %s %s\n", rep.Scenario, rep.Method, rep.Path)
	if rep.Error != "" {
		fmt.Fprintf(r.w, "  %s\n", rep.Error)
		return
	}
	line(r.w, "tokend", rep.Tokend)
	if rep.Ceiling != nil {
		line(r.w, "ceiling", rep.Ceiling)
	}
	if rep.CeilingError != "" {
		fmt.Fprintf(r.w, "  ceiling    not measured: %s\n", rep.CeilingError)
	}
	if q := rep.Ratio; q != nil {
		fmt.Fprintf(r.w, "  ratio      tokend does %s of the ceiling's ok/s; p99 %s vs %s; the ceiling %s\n",
			pct(q.OKPerSec), msText(q.P99TokendMS), msText(q.P99CeilingMS), q.CeilingDoes)
		if len(q.Runs) > 1 {
			var runs []string
			for _, x := range q.Runs {
				runs = append(runs, pct(x))
			}
			fmt.Fprintf(r.w, "  runs       %d alternating runs, median reported; ratios %s\n", len(q.Runs), strings.Join(runs, " "))
		}
	}
	if a := rep.Argon2; a != nil {
		fmt.Fprintf(r.w, "  argon2id %8.1f hashes/s (%s; %d goroutines)  p50 %s  p99 %s per hash\n",
			a.HashesPerSec, a.Params, a.Goroutines, msText(a.Latency.P50), msText(a.Latency.P99))
		fmt.Fprintf(r.w, "  ratio      tokend's %.1f logins/s are %s of the argon2id hash rate\n", rep.Tokend.OKPerSec, pct(a.Ratio))
	}
}

func line(w io.Writer, name string, s *summary) {
	lat := func(v float64) string {
		if s.OK == 0 {
			return "-"
		}
		return msText(v)
	}
	fmt.Fprintf(w, "  %-8s %8.1f ok/s %9.1f req/s  p50 %s  p90 %s  p99 %s  max %s  non-2xx %s  errors %d",
		name, s.OKPerSec, s.PerSec, lat(s.Latency.P50), lat(s.Latency.P90), lat(s.Latency.P99), lat(s.Latency.Max), s.non2xx(), s.Errors)
	if s.BadAnswers > 0 {
		fmt.Fprintf(w, "  bad answers %d", s.BadAnswers)
	}
	fmt.Fprintln(w)
	if s.FirstError != "" {
		fmt.Fprintf(w, "           first error: %s\n", strings.TrimSpace(s.FirstError))
	}
}

func msText(v float64) string { return fmt.Sprintf("%.2fms", v) }

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }
