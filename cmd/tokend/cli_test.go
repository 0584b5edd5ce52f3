package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
)

// cheapArgon makes password hashing fast where a test does not care about
// its cost.
var cheapArgon = []string{"--argon2-memory", "1024", "--argon2-time", "1"}

// hermeticEnv removes every TOKEND_* variable for the duration of the test,
// so that a developer's shell cannot change what the CLI does (each flag
// has an environment twin). The variables come back at cleanup.
func hermeticEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TOKEND_") {
			t.Setenv(k, v) // restores it at cleanup
			os.Unsetenv(k)
		}
	}
}

// runCLI runs a command line in-process, as main would.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// fixture is one SQLite file in a temporary directory and the CLI run
// against it.
type fixture struct {
	t    *testing.T
	path string
	st   *sqlite.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	hermeticEnv(t)
	return &fixture{t: t, path: filepath.Join(t.TempDir(), "tokend.db")}
}

func (f *fixture) db() string { return "sqlite:" + f.path }

// run runs the CLI with --db (last, after any positional argument).
func (f *fixture) run(stdin string, args ...string) (stdout, stderr string, err error) {
	f.t.Helper()
	return runCLI(f.t, stdin, append(args, "--db", f.db())...)
}

// must runs the CLI and fails the test unless it succeeds; it returns stdout.
func (f *fixture) must(stdin string, args ...string) string {
	f.t.Helper()
	out, errOut, err := f.run(stdin, args...)
	if err != nil {
		f.t.Fatalf("tokend %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// store opens the fixture's file directly, to check what the CLI stored.
func (f *fixture) store() *sqlite.Store {
	f.t.Helper()
	if f.st == nil {
		st, err := sqlite.Open(context.Background(), f.path)
		if err != nil {
			f.t.Fatalf("open store: %v", err)
		}
		f.t.Cleanup(func() { st.Close() })
		f.st = st
	}
	return f.st
}

func (f *fixture) client(id string) *tokend.ClientApp {
	f.t.Helper()
	c, err := f.store().ClientByID(context.Background(), id)
	if err != nil {
		f.t.Fatalf("client %s: %v", id, err)
	}
	return c
}

func (f *fixture) user(name string) *tokend.User {
	f.t.Helper()
	u, err := f.store().UserByName(context.Background(), name)
	if err != nil {
		f.t.Fatalf("user %s: %v", name, err)
	}
	return u
}

// addClient runs `client add NAME --json` with extra flags and returns the
// id and secret it printed.
func (f *fixture) addClient(name string, flags ...string) (id, sec string) {
	f.t.Helper()
	obj := decodeOne[map[string]any](f.t, f.must("", append([]string{"client", "add", name, "--json"}, flags...)...))
	id, _ = obj["client_id"].(string)
	sec, _ = obj["client_secret"].(string)
	return id, sec
}

// addUser runs `user add NAME --password-stdin` with cheap hashing.
func (f *fixture) addUser(name, password string, flags ...string) {
	f.t.Helper()
	args := append([]string{"user", "add", name, "--password-stdin"}, cheapArgon...)
	f.must(password+"\n", append(args, flags...)...)
}

// decodeOne decodes s as exactly one JSON value and fails on anything after it.
func decodeOne[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode JSON: %v\n%s", err, s)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		t.Fatalf("more than one JSON value in output:\n%s", s)
	}
	return v
}

func checkPassword(t *testing.T, password, hash string) bool {
	t.Helper()
	ok, err := secret.CheckPassword(password, hash)
	if err != nil {
		t.Fatalf("check password: %v", err)
	}
	return ok
}

func wantUsageError(t *testing.T, err error) usageError {
	t.Helper()
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v (%T), want a usage error", err, err)
	}
	return ue
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := tokend.ErrorCode(err); got != code {
		t.Fatalf("err = %v, code %q; want code %q", err, got, code)
	}
}

func wantNear(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want).Abs(); d > 5*time.Second {
		t.Errorf("%s = %v, want about %v (off by %v)", what, got, want, d)
	}
}

func TestTopLevel(t *testing.T) {
	hermeticEnv(t)
	t.Run("no args", func(t *testing.T) {
		out, errOut, err := runCLI(t, "")
		wantUsageError(t, err)
		if out != "" || !strings.Contains(errOut, "Usage:") {
			t.Errorf("stdout %q, stderr %q; want the usage on stderr only", out, errOut)
		}
	})
	for _, help := range []string{"--help", "-h", "help"} {
		t.Run(help, func(t *testing.T) {
			out, errOut, err := runCLI(t, "", help)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"Usage:", "tokend serve", "tokend user add", "tokend client rotate-secret", "tokend key rotate"} {
				if !strings.Contains(out, want) {
					t.Errorf("usage lacks %q:\n%s", want, out)
				}
			}
			if errOut != "" {
				t.Errorf("stderr = %q", errOut)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"user"}, "user needs a subcommand"},
		{[]string{"client"}, "client needs a subcommand"},
		{[]string{"key"}, "key needs a subcommand"},
		{[]string{"user", "--json"}, "user needs a subcommand"},
		{[]string{"user", "frobnicate"}, `unknown command "user frobnicate"`},
		{[]string{"key", "delete"}, `unknown command "key delete"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := runCLI(t, "", tc.args...)
			if ue := wantUsageError(t, err); !strings.Contains(ue.msg, tc.want) {
				t.Errorf("message %q, want it to contain %q", ue.msg, tc.want)
			}
		})
	}
	t.Run("command help", func(t *testing.T) {
		_, errOut, err := runCLI(t, "", "client", "add", "--help")
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("err = %v, want flag.ErrHelp", err)
		}
		for _, want := range []string{"-grant", "-mode", "-public", "-db"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("help lacks %q:\n%s", want, errOut)
			}
		}
	})
}

// Wrong usage is wrong usage whatever the store: it should be reported
// before the store is opened (and before a default tokend.db is created).
func TestUsageErrorsBeforeStore(t *testing.T) {
	hermeticEnv(t)
	bad := "sqlite:" + filepath.Join(t.TempDir(), "no", "such", "dir", "tokend.db")
	for _, args := range [][]string{
		{"user", "passwd", "alice"},
		{"client", "add", "app", "--grant", "implicit"},
		{"key", "rotate", "--alg", "HS256"},
		{"client", "rotate-secret", uuid.NewString(), "--overlap", "-1m"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, _, err := runCLI(t, "", append(args, "--db", bad)...)
			wantUsageError(t, err)
		})
	}
}

func TestServeBadFlags(t *testing.T) {
	hermeticEnv(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "never-opened.db")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"alg", []string{"--alg", "HS256"}, []string{`--alg "HS256"`}},
		{"log format", []string{"--log-format", "xml"}, []string{`--log-format "xml"`}},
		{"log level", []string{"--log-level", "loud"}, []string{`--log-level "loud"`}},
		{"addr", []string{"--addr", "nonsense"}, []string{`--addr "nonsense"`}},
		{"sync interval", []string{"--sync-interval", "5s"}, []string{"--sync-interval"}},
		{"argon2", []string{"--argon2-memory", "10"}, []string{"argon2"}},
		{"taiki end-user rate", []string{"--taiki-user-rate", "-1"}, []string{"taiki end-user cap and rate"}},
		{"audience of refresh tokens", []string{"--issuer", "https://auth.example", "--audience", "https://auth.example/refresh"}, []string{`--audience "https://auth.example/refresh"`}},
		{"every problem at once",
			[]string{"--alg", "HS256", "--log-format", "xml", "--addr", "nonsense"},
			[]string{`--alg "HS256"`, `--log-format "xml"`, `--addr "nonsense"`}},
		{"not a duration", []string{"--access-ttl", "long"}, []string{"access-ttl"}},
		{"unknown flag", []string{"--port", "80"}, []string{"port"}},
		{"argument", []string{"now"}, []string{"no arguments"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, "", append([]string{"serve", "--db", db}, tc.args...)...)
			ue := wantUsageError(t, err)
			for _, w := range tc.want {
				if !strings.Contains(ue.msg, w) {
					t.Errorf("message %q does not name %q", ue.msg, w)
				}
			}
		})
	}
	if _, err := os.Stat(strings.TrimPrefix(db, "sqlite:")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected serve touched the store: %v", err)
	}
}

// Every flag has an environment twin; --db is TOKEND_DB.
func TestEnvironmentTwins(t *testing.T) {
	hermeticEnv(t)
	dir := t.TempDir()
	envDB, flagDB := filepath.Join(dir, "env.db"), filepath.Join(dir, "flag.db")
	t.Setenv("TOKEND_DB", "sqlite:"+envDB)

	out, errOut, err := runCLI(t, "", "client", "add", "from-env", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	id := decodeOne[map[string]string](t, out)["client_id"]
	st, err := sqlite.Open(context.Background(), envDB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if c, err := st.ClientByID(context.Background(), id); err != nil || c.Name != "from-env" {
		t.Fatalf("the client is not in TOKEND_DB's store: %+v, %v", c, err)
	}

	// The flag wins over its twin.
	if _, errOut, err := runCLI(t, "", "client", "add", "from-flag", "--db", "sqlite:"+flagDB); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if _, err := os.Stat(flagDB); err != nil {
		t.Errorf("--db was ignored: %v", err)
	}
	if cl, _ := st.ListClients(context.Background()); len(cl) != 1 {
		t.Errorf("the env store has %d clients, want 1", len(cl))
	}

	// A bad twin is a usage error naming the variable.
	t.Setenv("TOKEND_LOG_FORMAT", "xml")
	_, _, err = runCLI(t, "", "serve")
	if ue := wantUsageError(t, err); !strings.Contains(ue.msg, "xml") {
		t.Errorf("message %q", ue.msg)
	}
	t.Setenv("TOKEND_DB", "")
	_, _, err = runCLI(t, "", "client", "list")
	if err == nil {
		t.Error("an empty TOKEND_DB must be refused")
	}

	// The server's settings do not leak into the management commands.
	t.Setenv("TOKEND_DB", "sqlite:"+envDB)
	t.Setenv("TOKEND_ACCESS_TTL", "72h")
	t.Setenv("TOKEND_ALG", "RS512")
	if _, errOut, err := runCLI(t, "", "client", "add", "no-leak"); err != nil {
		t.Fatalf("TOKEND_ACCESS_TTL leaked into client add: %v\n%s", err, errOut)
	}
	if _, errOut, err := runCLI(t, "", "key", "rotate"); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	ks, _ := st.ListKeys(context.Background())
	if len(ks) != 1 || ks[0].Alg != "ES256" {
		t.Errorf("TOKEND_ALG leaked into key rotate: %+v", ks)
	}
}

// TestBinaryExitCodes builds the real binary and checks what a shell sees:
// exit status 0, 1 (operational error) or 2 (wrong usage), a message on
// stderr, and no secret there.
func TestBinaryExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tokend")
	if out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKEND_") {
			env = append(env, kv)
		}
	}
	db := "sqlite:" + filepath.Join(dir, "tokend.db")

	type result struct {
		code           int
		stdout, stderr string
	}
	tokendBin := func(stdin string, args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, env
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run %v: %v", args, err)
		}
		return result{cmd.ProcessState.ExitCode(), out.String(), errOut.String()}
	}

	const password = "s3cret-Pa55word"
	clientOut := tokendBin("", "client", "add", "app", "--db", db, "--json")
	if clientOut.code != 0 || clientOut.stderr != "" {
		t.Fatalf("client add: %+v", clientOut)
	}
	var client map[string]string
	if err := json.Unmarshal([]byte(clientOut.stdout), &client); err != nil {
		t.Fatal(err)
	}
	pubOut := tokendBin("", "client", "add", "spa", "--public", "--db", db, "--json")
	var pub map[string]any
	if err := json.Unmarshal([]byte(pubOut.stdout), &pub); err != nil {
		t.Fatal(err)
	}
	secrets := []string{password, client["client_secret"]}

	for _, tc := range []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string // a part of stderr; "" wants stderr empty
	}{
		{"help", "", []string{"--help"}, 0, ""},
		{"command help", "", []string{"user", "add", "--help"}, 0, "-password-stdin"},
		{"user add", password + "\n", append([]string{"user", "add", "alice", "--password-stdin", "--db", db}, cheapArgon...), 0, ""},
		{"user list", "", []string{"user", "list", "--json", "--db", db}, 0, ""},
		{"key rotate", "", []string{"key", "rotate", "--db", db}, 0, ""},
		{"no command", "", nil, 2, "no command given"},
		{"unknown command", "", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"no subcommand", "", []string{"user"}, 2, "user needs a subcommand"},
		{"missing argument", "", []string{"user", "disable", "--db", db}, 2, "needs a user name"},
		{"bad flag", "", []string{"user", "list", "--db", db, "--nope"}, 2, "-nope"},
		{"bad flag value", "", []string{"client", "add", "x", "--mode", "staging", "--db", db}, 2, `"staging"`},
		{"passwd without stdin", password + "\n", []string{"user", "passwd", "alice", "--db", db}, 2, "--password-stdin"},
		{"serve bad flags", "", []string{"serve", "--db", db, "--alg", "HS256", "--log-format", "xml"}, 2, "--log-format"},
		{"disable unknown user", "", []string{"user", "disable", "ghost", "--db", db}, 1, `no user "ghost"`},
		{"duplicate user", password + "\n", append([]string{"user", "add", "alice", "--password-stdin", "--db", db}, cheapArgon...), 1, "already exists"},
		{"passwd unknown user", password + "\n", append([]string{"user", "passwd", "ghost", "--password-stdin", "--db", db}, cheapArgon...), 1, "ghost"},
		{"rotate public client", "", []string{"client", "rotate-secret", pub["client_id"].(string), "--db", db}, 1, "public"},
		{"postgres unreachable", "", []string{"user", "list", "--db", "postgres://admin:hunter2@127.0.0.1:1/tokend?connect_timeout=2"}, 1, "unavailable"},
		{"unsupported db", "", []string{"user", "list", "--db", "mysql://admin:hunter2@db.example/tokend"}, 1, "***@db.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tokendBin(tc.stdin, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit status %d, want %d\nstderr: %s", r.code, tc.code, r.stderr)
			}
			switch {
			case tc.stderr == "" && r.stderr != "":
				t.Errorf("stderr = %q, want nothing", r.stderr)
			case !strings.Contains(r.stderr, tc.stderr):
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tc.stderr)
			}
			if tc.code != 0 && !strings.Contains(r.stderr, "tokend: ") {
				t.Errorf("stderr = %q, want a \"tokend: \" line", r.stderr)
			}
			if tc.code == 2 && !strings.Contains(r.stderr, "tokend --help") {
				t.Errorf("a usage error without a hint: %q", r.stderr)
			}
			for _, s := range append(secrets, "hunter2") {
				if strings.Contains(r.stderr, s) {
					t.Errorf("stderr shows a secret: %q", r.stderr)
				}
			}
		})
	}
}
