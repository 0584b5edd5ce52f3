// Package bench_test runs the load scripts of this directory briefly, so
// that a change that breaks them (or the tools they start) shows in CI and
// not on the day someone needs a figure. No figure is checked: a load on a
// shared machine proves nothing about speed.
package bench_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// compare runs bench/compare.sh with args and extra environment; it
// returns the output and the exit code.
func compare(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("bench/run.sh needs curl")
	}
	cmd := exec.CommandContext(t.Context(), "bash", append([]string{"compare.sh"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatalf("compare.sh: %v", err)
	}
	return string(out), 0
}

// buildTokend builds this tree's tokend once for the test.
func buildTokend(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tokend")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/tokend").CombinedOutput(); err != nil {
		t.Fatalf("build tokend: %v\n%s", err, out)
	}
	return bin
}

var (
	roundLine  = regexp.MustCompile(`(?m)^round 1 (before|after): +([0-9.]+) ok/s .*errors 0$`)
	ratioLine  = regexp.MustCompile(`(?m)^round 1 after/before ([0-9.]+)$`)
	medianLine = regexp.MustCompile(`(?m)^after/before: median ([0-9.]+) \(rounds: ([0-9.]+)\)$`)
)

// wantRound checks one round's output: both builds answered, and the
// ratio and median are the ratio of the two rates printed.
func wantRound(t *testing.T, out string) {
	t.Helper()
	rates := map[string]float64{}
	for _, m := range roundLine.FindAllStringSubmatch(out, -1) {
		rates[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	if rates["before"] <= 0 || rates["after"] <= 0 {
		t.Fatalf("want a positive rate for both builds; output:\n%s", out)
	}
	r := ratioLine.FindStringSubmatch(out)
	m := medianLine.FindStringSubmatch(out)
	if r == nil || m == nil || m[1] != r[1] || m[2] != r[1] {
		t.Fatalf("want the round's ratio as the median; output:\n%s", out)
	}
	want := strconv.FormatFloat(rates["after"]/rates["before"], 'f', 2, 64)
	if r[1] != want {
		t.Fatalf("ratio %s, want %s (after %v / before %v)", r[1], want, rates["after"], rates["before"])
	}
}

var brief = []string{"BENCH_D=300ms", "BENCH_WARMUP=100ms", "BENCH_C=8"}

func TestCompareSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tokend four times")
	}
	bin := buildTokend(t)
	out, code := compare(t, append(brief, "BENCH_SCENARIO=client_credentials", "COMPARE_DB="), bin, bin, "1")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, ", store: SQLite (a fresh file for each run)\n") {
		t.Fatalf("want the store named; output:\n%s", out)
	}
	wantRound(t, out)
}

// TestComparePostgres: with COMPARE_DB each run gets a fresh schema of its
// own in that database, and tokend really stores its sessions there.
func TestComparePostgres(t *testing.T) {
	dsn := os.Getenv("TOKEND_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("TOKEND_TEST_POSTGRES is not set")
	}
	if testing.Short() {
		t.Skip("starts tokend four times")
	}
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("compare.sh needs psql for COMPARE_DB")
	}
	bin := buildTokend(t)
	out, code := compare(t, append(brief, "BENCH_SCENARIO=refresh_token", "COMPARE_DB="+dsn), bin, bin, "1")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, ", store: PostgreSQL (schema tokend_compare, made afresh for each run)\n") {
		t.Fatalf("want the store named; output:\n%s", out)
	}
	wantRound(t, out)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var sessions int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM tokend_compare.sessions`).Scan(&sessions); err != nil {
		t.Fatalf("the last run's sessions: %v", err)
	}
	if sessions == 0 {
		t.Fatal("the last run stored no session in schema tokend_compare")
	}
	if _, err := conn.Exec(ctx, `DROP SCHEMA tokend_compare CASCADE`); err != nil {
		t.Fatal(err)
	}
}

func TestCompareUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"one argument", nil, []string{"HEAD"}, "usage: bench/compare.sh BEFORE AFTER [ROUNDS]"},
		{"zero rounds", nil, []string{"HEAD", "HEAD", "0"}, "ROUNDS must be a positive number"},
		{"every scenario", []string{"BENCH_SCENARIO=all"}, []string{"HEAD", "HEAD"}, "must name one scenario"},
		{"two scenarios", []string{"BENCH_SCENARIO=jwks,introspect"}, []string{"HEAD", "HEAD"}, "must name one scenario"},
		{"not a database URL", []string{"COMPARE_DB=sqlite:/tmp/x.db"}, []string{"HEAD", "HEAD"}, "must be a postgres:// URL"},
		{"neither commit nor binary", nil, []string{"no-such-commit-or-file", "HEAD", "1"}, "is neither a commit nor a binary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := compare(t, tc.env, tc.args...)
			if code != 2 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, output %q; want exit 2 and %q", code, out, tc.want)
			}
		})
	}
}
