package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

func TestClientAdd(t *testing.T) {
	t.Run("confidential", func(t *testing.T) {
		f := newFixture(t)
		out := f.must("", "client", "add", "billing", "--grant", "client_credentials", "--json")
		obj := decodeOne[map[string]any](t, out)
		if len(obj) != 2 {
			t.Errorf("output has keys %v, want client_id and client_secret", obj)
		}
		id, _ := obj["client_id"].(string)
		sec, _ := obj["client_secret"].(string)
		if _, err := uuid.Parse(id); err != nil {
			t.Errorf("client_id %q is not a UUID: %v", id, err)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(sec); len(sec) != 43 || err != nil || len(raw) != 32 {
			t.Errorf("client_secret %q: want 43 characters of base64url (32 bytes), err %v", sec, err)
		}

		c := f.client(id)
		if len(c.SecretHash) != 32 || bytes.Equal(c.SecretHash, []byte(sec)) || bytes.Contains(c.SecretHash, []byte(sec)) {
			t.Errorf("stored SecretHash %x: want a 32-byte hash, not the secret", c.SecretHash)
		}
		pepper, err := f.store().Secret(context.Background(), "client_secret_pepper", func() ([]byte, error) {
			return nil, errors.New("the pepper should exist already")
		})
		if err != nil {
			t.Fatal(err)
		}
		if !secret.CheckClientSecret(pepper, sec, c.SecretHash) {
			t.Error("the printed secret does not match the stored hash")
		}
		if c.Name != "billing" || c.Public || c.Disabled || c.Mode != tokend.ModeProduction ||
			!slices.Equal(c.Grants, []string{tokend.GrantClientCredentials}) {
			t.Errorf("stored client %+v", c)
		}
	})

	t.Run("text output shows the secret once", func(t *testing.T) {
		f := newFixture(t)
		out := f.must("", "client", "add", "billing")
		var id, sec string
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "client_id: "); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(line, "client_secret: "); ok {
				sec = v
			}
		}
		if id == "" || len(sec) != 43 || strings.Count(out, sec) != 1 {
			t.Fatalf("output:\n%s", out)
		}
		// Without --grant a confidential client gets client_credentials.
		if c := f.client(id); !slices.Equal(c.Grants, []string{tokend.GrantClientCredentials}) {
			t.Errorf("default grants %v", c.Grants)
		}
	})

	t.Run("public", func(t *testing.T) {
		f := newFixture(t)
		obj := decodeOne[map[string]any](t, f.must("", "client", "add", "spa", "--public", "--json"))
		if _, ok := obj["client_secret"]; ok {
			t.Errorf("a public client got a secret: %v", obj)
		}
		if obj["public"] != true {
			t.Errorf("output %v, want public: true", obj)
		}
		c := f.client(obj["client_id"].(string))
		if !c.Public || len(c.SecretHash) != 0 {
			t.Errorf("stored client public=%v secret hash %x", c.Public, c.SecretHash)
		}
		if want := []string{tokend.GrantPassword, tokend.GrantRefreshToken}; !slices.Equal(c.Grants, want) {
			t.Errorf("default public grants %v, want %v", c.Grants, want)
		}
	})

	// DESIGN.md: flags may come before or after positional arguments.
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"flags after", []string{"client", "add", "web", "--grant", "password", "--grant", "refresh_token", "--mode", "sandbox", "--scope", "read", "--scope", "write", "--json"}},
		{"flags before", []string{"client", "add", "--grant", "password", "--grant", "refresh_token", "--mode", "sandbox", "--scope", "read", "--scope", "write", "--json", "web"}},
		{"flags around", []string{"client", "add", "--grant", "refresh_token", "--mode=sandbox", "--scope", "read", "web", "--grant", "password", "--scope=write", "--json"}},
		{"repeated grant", []string{"client", "add", "--grant", "refresh_token", "web", "--grant", "password", "--grant", "password", "--mode", "sandbox", "--scope", "read", "--scope", "write", "--json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			obj := decodeOne[map[string]any](t, f.must("", tc.args...))
			c := f.client(obj["client_id"].(string))
			if c.Name != "web" || c.Mode != tokend.ModeSandbox ||
				!slices.Equal(c.Grants, []string{tokend.GrantPassword, tokend.GrantRefreshToken}) ||
				!slices.Equal(c.Scopes, []string{"read", "write"}) {
				t.Errorf("stored name %q mode %q grants %v scopes %v", c.Name, c.Mode, c.Grants, c.Scopes)
			}
		})
	}

	t.Run("access ttl", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("svc", "--access-ttl", "5m")
		if c := f.client(id); c.AccessTTL != 5*time.Minute {
			t.Errorf("AccessTTL = %v", c.AccessTTL)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown grant", []string{"--grant", "implicit"}, `"implicit"`},
		{"public client_credentials", []string{"--public", "--grant", "client_credentials"}, "client_credentials"},
		{"bad mode", []string{"--mode", "staging"}, `"staging"`},
		{"scope with a space", []string{"--scope", "read write"}, "--scope"},
		{"scope with a quote", []string{"--scope", `"read`}, "--scope"},
		{"empty scope", []string{"--scope", ""}, "--scope"},
		{"access ttl too long", []string{"--access-ttl", "48h"}, "--access-ttl"},
		{"negative access ttl", []string{"--access-ttl", "-1m"}, "--access-ttl"},
		{"bad duration", []string{"--access-ttl", "soon"}, "access-ttl"},
		{"unknown flag", []string{"--secret", "x"}, "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.run("", append([]string{"client", "add", "app"}, tc.args...)...)
			if ue := wantUsageError(t, err); !strings.Contains(ue.msg, tc.want) {
				t.Errorf("message %q, want it to name %q", ue.msg, tc.want)
			}
			if cl, err := f.store().ListClients(context.Background()); err != nil || len(cl) != 0 {
				t.Errorf("after a usage error the store has clients %v (err %v)", cl, err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no name", []string{"client", "add"}},
		{"two names", []string{"client", "add", "a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.run("", tc.args...)
			wantUsageError(t, err)
		})
	}
	t.Run("bad name", func(t *testing.T) {
		f := newFixture(t)
		_, _, err := f.run("", "client", "add", " padded ")
		wantUsageError(t, err)
	})
}

func TestClientList(t *testing.T) {
	f := newFixture(t)
	if got := decodeOne[[]any](t, f.must("", "client", "list", "--json")); len(got) != 0 {
		t.Fatalf("fresh store lists %v", got)
	}
	conf, sec := f.addClient("backend", "--grant", "client_credentials", "--scope", "read")
	pub, _ := f.addClient("spa", "--public", "--mode", "sandbox")

	out := f.must("", "client", "list", "--json")
	if strings.Contains(out, sec) || strings.Contains(out, "secret") {
		t.Errorf("client list shows secret material:\n%s", out)
	}
	type listed struct {
		ClientID string   `json:"client_id"`
		Name     string   `json:"name"`
		Public   bool     `json:"public"`
		Grants   []string `json:"grants"`
		Scopes   []string `json:"scopes"`
		Mode     string   `json:"mode"`
		Disabled bool     `json:"disabled"`
	}
	got := decodeOne[[]listed](t, out)
	want := []listed{
		{conf, "backend", false, []string{"client_credentials"}, []string{"read"}, "production", false},
		{pub, "spa", true, []string{"password", "refresh_token"}, []string{}, "sandbox", false},
	}
	slices.SortFunc(got, func(a, b listed) int { return strings.Compare(a.Name, b.Name) })
	if len(got) != len(want) {
		t.Fatalf("listed %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ClientID != w.ClientID || g.Name != w.Name || g.Public != w.Public || g.Mode != w.Mode ||
			g.Disabled != w.Disabled || !slices.Equal(g.Grants, w.Grants) || !slices.Equal(g.Scopes, w.Scopes) {
			t.Errorf("listed %+v, want %+v", g, w)
		}
	}

	f.must("", "client", "disable", pub)
	for _, c := range decodeOne[[]listed](t, f.must("", "client", "list", "--json")) {
		if c.Disabled != (c.ClientID == pub) {
			t.Errorf("after disabling %s: %+v", pub, c)
		}
	}

	text := f.must("", "client", "list")
	for _, want := range []string{"CLIENT_ID", conf, pub, "backend", "spa"} {
		if !strings.Contains(text, want) {
			t.Errorf("text list lacks %q:\n%s", want, text)
		}
	}
}

func TestClientRotateSecret(t *testing.T) {
	t.Run("without overlap", func(t *testing.T) {
		f := newFixture(t)
		id, old := f.addClient("svc")
		oldHash := f.client(id).SecretHash

		obj := decodeOne[map[string]string](t, f.must("", "client", "rotate-secret", id, "--json"))
		if len(obj) != 2 || obj["client_id"] != id {
			t.Fatalf("output %v, want client_id %s and client_secret", obj, id)
		}
		sec := obj["client_secret"]
		if len(sec) != 43 || sec == old {
			t.Errorf("new secret %q (old %q)", sec, old)
		}
		c := f.client(id)
		if len(c.SecretHash) != 32 || bytes.Equal(c.SecretHash, oldHash) {
			t.Errorf("stored hash %x did not change from %x", c.SecretHash, oldHash)
		}
		if len(c.PrevSecretHash) != 0 || !c.PrevSecretUntil.IsZero() {
			t.Errorf("without --overlap the old secret stays: prev %x until %v", c.PrevSecretHash, c.PrevSecretUntil)
		}
	})

	t.Run("flag before id", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("svc")
		obj := decodeOne[map[string]string](t, f.must("", "client", "rotate-secret", "--json", id))
		if obj["client_id"] != id || len(obj["client_secret"]) != 43 {
			t.Errorf("output %v", obj)
		}
	})

	t.Run("overlap", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("svc")
		oldHash := f.client(id).SecretHash
		before := time.Now()
		f.must("", "client", "rotate-secret", id, "--overlap", "10m", "--json")
		c := f.client(id)
		if !bytes.Equal(c.PrevSecretHash, oldHash) {
			t.Errorf("PrevSecretHash %x, want the old hash %x", c.PrevSecretHash, oldHash)
		}
		wantNear(t, "PrevSecretUntil", c.PrevSecretUntil, before.Add(10*time.Minute))
	})

	t.Run("text output", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("svc")
		out := f.must("", "client", "rotate-secret", id)
		if !strings.Contains(out, "client_id: "+id) || !strings.Contains(out, "client_secret: ") {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("public client", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("spa", "--public")
		out, _, err := f.run("", "client", "rotate-secret", id, "--json")
		wantCode(t, err, tokend.EINVALID)
		if !strings.Contains(describe(err), "public") || out != "" {
			t.Errorf("message %q, stdout %q", describe(err), out)
		}
		if c := f.client(id); len(c.SecretHash) != 0 {
			t.Errorf("a public client got a secret hash %x", c.SecretHash)
		}
	})

	t.Run("unknown id", func(t *testing.T) {
		f := newFixture(t)
		_, _, err := f.run("", "client", "rotate-secret", uuid.NewString())
		wantCode(t, err, tokend.ENOTFOUND)
	})

	t.Run("negative overlap", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("svc")
		_, _, err := f.run("", "client", "rotate-secret", id, "--overlap", "-1m")
		wantUsageError(t, err)
	})

	t.Run("no id", func(t *testing.T) {
		f := newFixture(t)
		_, _, err := f.run("", "client", "rotate-secret")
		wantUsageError(t, err)
	})
}

func TestClientDisable(t *testing.T) {
	f := newFixture(t)
	id, _ := f.addClient("svc")
	other, _ := f.addClient("other")
	out := f.must("", "client", "disable", id)
	if !strings.Contains(out, id) {
		t.Errorf("output %q", out)
	}
	if !f.client(id).Disabled || f.client(other).Disabled {
		t.Error("disable did not touch exactly the named client")
	}
	_, _, err := f.run("", "client", "disable", uuid.NewString())
	wantCode(t, err, tokend.ENOTFOUND)
}

func TestUserAddPasswordStdin(t *testing.T) {
	for _, tc := range []struct {
		name, stdin, want string
	}{
		{"newline", "correct horse\n", "correct horse"},
		{"crlf", "correct horse\r\n", "correct horse"},
		{"no newline", "correct horse", "correct horse"},
		{"first line only", "first\nsecond\n", "first"},
		{"spaces kept", "  spaced  \n", "  spaced  "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			out := f.must(tc.stdin, append([]string{"user", "add", "alice", "--password-stdin"}, cheapArgon...)...)
			if strings.Contains(out, tc.want) {
				t.Errorf("stdout shows the password:\n%s", out)
			}
			u := f.user("alice")
			if u.PasswordHash == "" || strings.Contains(u.PasswordHash, tc.want) {
				t.Fatalf("stored hash %q", u.PasswordHash)
			}
			if !checkPassword(t, tc.want, u.PasswordHash) {
				t.Errorf("%q does not verify against the stored hash", tc.want)
			}
			for _, wrong := range []string{tc.want + "\n", tc.want + "\r", tc.want + "\r\n"} {
				if checkPassword(t, wrong, u.PasswordHash) {
					t.Errorf("%q verifies: the line ending was kept", wrong)
				}
			}
		})
	}

	for _, tc := range []struct{ name, stdin string }{
		{"empty stdin", ""},
		{"empty line", "\n"},
		{"empty crlf line", "\r\n"},
		{"too long", strings.Repeat("x", 1025) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.run(tc.stdin, append([]string{"user", "add", "alice", "--password-stdin"}, cheapArgon...)...)
			wantCode(t, err, tokend.EINVALID)
			if _, err := f.store().UserByName(context.Background(), "alice"); tokend.ErrorCode(err) != tokend.ENOTFOUND {
				t.Errorf("the user was created anyway (err %v)", err)
			}
		})
	}

	t.Run("roles", func(t *testing.T) {
		f := newFixture(t)
		f.addUser("alice", "pw-alice", "--role", "admin", "--role", "ops")
		if u := f.user("alice"); !slices.Equal(u.Roles, []string{"admin", "ops"}) {
			t.Errorf("roles %v", u.Roles)
		}
	})

	t.Run("flags before name", func(t *testing.T) {
		f := newFixture(t)
		args := append([]string{"user", "add", "--password-stdin", "--role", "admin"}, cheapArgon...)
		f.must("pw\n", append(args, "bob")...)
		if u := f.user("bob"); !slices.Equal(u.Roles, []string{"admin"}) || !checkPassword(t, "pw", u.PasswordHash) {
			t.Errorf("stored %+v", u)
		}
	})

	t.Run("duplicate", func(t *testing.T) {
		f := newFixture(t)
		f.addUser("alice", "pw1")
		_, errOut, err := f.run("pw2\n", append([]string{"user", "add", "alice", "--password-stdin"}, cheapArgon...)...)
		wantCode(t, err, tokend.ECONFLICT)
		if msg := describe(err); !strings.Contains(msg, "alice") || !strings.Contains(msg, "exists") {
			t.Errorf("message %q, want it to say alice exists", msg)
		}
		if strings.Contains(errOut, "pw2") {
			t.Errorf("stderr shows the password: %q", errOut)
		}
		if !checkPassword(t, "pw1", f.user("alice").PasswordHash) {
			t.Error("the duplicate replaced the first user's password")
		}
	})

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"role with a space", []string{"--role", "a b"}},
		{"empty role", []string{"--role", ""}},
		{"weak argon2 memory", []string{"--argon2-memory", "512"}},
		{"zero argon2 time", []string{"--argon2-time", "0"}},
		{"argon2 memory not a number", []string{"--argon2-memory", "lots"}},
		{"no name", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			args := []string{"user", "add", "alice", "--password-stdin"}
			if tc.args == nil {
				args = []string{"user", "add", "--password-stdin"}
			}
			_, _, err := f.run("pw\n", append(args, tc.args...)...)
			wantUsageError(t, err)
		})
	}
}

func TestUserAddGeneratedPassword(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		f := newFixture(t)
		out := f.must("ignored\n", append([]string{"user", "add", "carol"}, cheapArgon...)...)
		var pw string
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "password: "); ok {
				pw = v
			}
		}
		if len(pw) < 20 || strings.Count(out, pw) != 1 {
			t.Fatalf("want the generated password once:\n%s", out)
		}
		if !checkPassword(t, pw, f.user("carol").PasswordHash) {
			t.Error("the printed password does not verify")
		}
	})
	t.Run("json", func(t *testing.T) {
		f := newFixture(t)
		obj := decodeOne[map[string]any](t, f.must("", append([]string{"user", "add", "carol", "--json", "--role", "ops"}, cheapArgon...)...))
		pw, _ := obj["password"].(string)
		u := f.user("carol")
		if obj["id"] != u.ID || obj["username"] != "carol" || len(pw) < 20 {
			t.Fatalf("output %v", obj)
		}
		if !checkPassword(t, pw, u.PasswordHash) {
			t.Error("the printed password does not verify")
		}
	})
	t.Run("json with stdin shows no password", func(t *testing.T) {
		f := newFixture(t)
		obj := decodeOne[map[string]any](t, f.must("pw\n", append([]string{"user", "add", "carol", "--json", "--password-stdin"}, cheapArgon...)...))
		if _, ok := obj["password"]; ok {
			t.Errorf("output %v has a password", obj)
		}
	})
}

func TestUserList(t *testing.T) {
	f := newFixture(t)
	if got := decodeOne[[]any](t, f.must("", "user", "list", "--json")); len(got) != 0 {
		t.Fatalf("fresh store lists %v", got)
	}
	f.addUser("bob", "pw-bob")
	f.addUser("alice", "pw-alice", "--role", "admin", "--role", "ops")

	appID, _ := f.addClient("app")
	endUser := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: "app-user-1", ClientID: appID, CreatedAt: time.Now()}
	if err := f.store().CreateUser(context.Background(), endUser); err != nil {
		t.Fatal(err)
	}

	out := f.must("", "user", "list", "--json")
	if strings.Contains(out, "argon2") || strings.Contains(out, "pw-") {
		t.Errorf("user list shows password material:\n%s", out)
	}
	got := decodeOne[[]map[string]any](t, out)
	if len(got) != 2 || got[0]["username"] != "alice" || got[1]["username"] != "bob" {
		t.Fatalf("listed %v, want alice and bob (not the client's end user)", got)
	}
	alice := got[0]
	if alice["id"] != f.user("alice").ID || alice["disabled"] != false || alice["last_login_at"] != nil {
		t.Errorf("alice listed as %v", alice)
	}
	if roles, _ := alice["roles"].([]any); len(roles) != 2 || roles[0] != "admin" || roles[1] != "ops" {
		t.Errorf("alice's roles %v", alice["roles"])
	}
	if roles, ok := got[1]["roles"].([]any); !ok || len(roles) != 0 {
		t.Errorf("bob's roles %v, want []", got[1]["roles"])
	}
	if _, ok := alice["client_id"]; ok {
		t.Errorf("a user of no client has client_id: %v", alice)
	}

	for _, args := range [][]string{
		{"user", "list", "--client", appID, "--json"},
		{"user", "list", "--json", "--client=" + appID},
	} {
		got := decodeOne[[]map[string]any](t, f.must("", args...))
		if len(got) != 1 || got[0]["username"] != "app-user-1" || got[0]["client_id"] != appID || got[0]["id"] != endUser.ID {
			t.Errorf("%v listed %v, want only the client's end user", args, got)
		}
	}
	if got := decodeOne[[]any](t, f.must("", "user", "list", "--client", uuid.NewString(), "--json")); len(got) != 0 {
		t.Errorf("another client lists %v", got)
	}

	f.must("", "user", "disable", "bob")
	got = decodeOne[[]map[string]any](t, f.must("", "user", "list", "--json"))
	if got[1]["username"] != "bob" || got[1]["disabled"] != true || got[0]["disabled"] != false {
		t.Errorf("after disabling bob: %v", got)
	}

	text := f.must("", "user", "list")
	for _, want := range []string{"USERNAME", "alice", "bob", "admin,ops"} {
		if !strings.Contains(text, want) {
			t.Errorf("text list lacks %q:\n%s", want, text)
		}
	}
	_, _, err := f.run("", "user", "list", "extra")
	wantUsageError(t, err)
}

func TestUserPasswd(t *testing.T) {
	f := newFixture(t)
	f.addUser("alice", "old-password")
	before := f.user("alice")

	out := f.must("new-password\r\n", append([]string{"user", "passwd", "alice", "--password-stdin"}, cheapArgon...)...)
	if strings.Contains(out, "password:") || strings.Contains(out, "new-password") {
		t.Errorf("output shows the password: %q", out)
	}
	after := f.user("alice")
	if after.PasswordHash == before.PasswordHash {
		t.Fatal("the hash did not change")
	}
	if checkPassword(t, "old-password", after.PasswordHash) {
		t.Error("the old password still verifies")
	}
	if !checkPassword(t, "new-password", after.PasswordHash) {
		t.Error("the new password does not verify")
	}

	// By id, and flags before the name.
	f.must("third\n", append([]string{"user", "passwd", "--password-stdin"}, append(cheapArgon, after.ID)...)...)
	if !checkPassword(t, "third", f.user("alice").PasswordHash) {
		t.Error("passwd by id did not set the password")
	}

	t.Run("without --password-stdin", func(t *testing.T) {
		_, _, err := f.run("x\n", "user", "passwd", "alice")
		if ue := wantUsageError(t, err); !strings.Contains(ue.msg, "--password-stdin") {
			t.Errorf("message %q", ue.msg)
		}
		if !checkPassword(t, "third", f.user("alice").PasswordHash) {
			t.Error("the password changed")
		}
	})
	t.Run("empty stdin", func(t *testing.T) {
		_, _, err := f.run("", append([]string{"user", "passwd", "alice", "--password-stdin"}, cheapArgon...)...)
		wantCode(t, err, tokend.EINVALID)
	})
	t.Run("empty line", func(t *testing.T) {
		_, _, err := f.run("\n", append([]string{"user", "passwd", "alice", "--password-stdin"}, cheapArgon...)...)
		wantCode(t, err, tokend.EINVALID)
	})
	t.Run("unknown user", func(t *testing.T) {
		_, _, err := f.run("x\n", append([]string{"user", "passwd", "nobody", "--password-stdin"}, cheapArgon...)...)
		wantCode(t, err, tokend.ENOTFOUND)
		if !strings.Contains(describe(err), "nobody") {
			t.Errorf("message %q does not name the user", describe(err))
		}
	})
}

// The argon2 parameters of `user passwd` are not validated, unlike those of
// `user add`.
func TestUserPasswdValidatesArgonParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"weak memory", []string{"--argon2-memory", "512", "--argon2-time", "1"}},
		{"zero time", []string{"--argon2-memory", "1024", "--argon2-time", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.addUser("alice", "old")
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("user passwd panicked: %v", p)
					}
				}()
				_, _, err = f.run("new\n", append([]string{"user", "passwd", "alice", "--password-stdin"}, tc.args...)...)
			}()
			wantUsageError(t, err)
			if !checkPassword(t, "old", f.user("alice").PasswordHash) {
				t.Error("the password changed")
			}
		})
	}
}

func TestUserDisable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addUser("alice", "pw")
	f.addUser("bob", "pw")
	alice, bob := f.user("alice"), f.user("bob")
	now := time.Now()
	newSession := func(userID string) string {
		t.Helper()
		s := &tokend.Session{ID: uuid.Must(uuid.NewV7()).String(), UserID: userID, Dialect: "oauth",
			RotatedAt: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := f.store().CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	a1, a2, b1 := newSession(alice.ID), newSession(alice.ID), newSession(bob.ID)

	out := f.must("", "user", "disable", "alice")
	if !strings.Contains(out, "alice") {
		t.Errorf("output %q", out)
	}
	if !f.user("alice").Disabled || f.user("bob").Disabled {
		t.Error("disable did not touch exactly alice")
	}
	for _, id := range []string{a1, a2} {
		s, err := f.store().SessionByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Live(time.Now()) {
			t.Errorf("alice's session %s is still live", id)
		}
	}
	if s, err := f.store().SessionByID(ctx, b1); err != nil || !s.Live(time.Now()) {
		t.Errorf("bob's session was touched: %+v, %v", s, err)
	}

	// Disabling again is harmless; an unknown user is an error naming it.
	f.must("", "user", "disable", "alice")
	_, _, err := f.run("", "user", "disable", "ghost")
	wantCode(t, err, tokend.ENOTFOUND)
	if !strings.Contains(describe(err), "ghost") {
		t.Errorf("message %q does not name the user", describe(err))
	}
	_, _, err = f.run("", "user", "disable")
	wantUsageError(t, err)
}

type listedKey struct {
	Kid         string  `json:"kid"`
	Alg         string  `json:"alg"`
	Status      string  `json:"status"`
	ActivatesAt string  `json:"activates_at"`
	RevokedAt   *string `json:"revoked_at"`
}

func (f *fixture) keys() []listedKey {
	f.t.Helper()
	out := f.must("", "key", "list", "--json")
	if strings.Contains(out, "private") || strings.Contains(out, `"d"`) {
		f.t.Errorf("key list shows private material:\n%s", out)
	}
	return decodeOne[[]listedKey](f.t, out)
}

func (f *fixture) keyStatuses(alg string) []string {
	f.t.Helper()
	var st []string
	for _, k := range f.keys() {
		if k.Alg == alg {
			st = append(st, k.Status)
		}
	}
	return st
}

func TestKeys(t *testing.T) {
	t.Run("rotate", func(t *testing.T) {
		f := newFixture(t)
		if got := f.keys(); len(got) != 0 {
			t.Fatalf("fresh store lists keys %v", got)
		}
		out := f.must("", "key", "rotate")
		got := f.keys()
		if len(got) != 1 || got[0].Alg != "ES256" || got[0].Status != "active" || got[0].Kid == "" || got[0].RevokedAt != nil {
			t.Fatalf("after one rotate: %+v", got)
		}
		if !strings.Contains(out, got[0].Kid) || !strings.Contains(out, "ES256") {
			t.Errorf("rotate output %q does not name the key", out)
		}
		first := got[0].Kid

		f.must("", "key", "rotate")
		got = f.keys()
		if len(got) != 2 || got[0].Kid != first || got[0].Status != "retired" || got[1].Status != "active" {
			t.Fatalf("after a second rotate: %+v", got)
		}

		f.must("", "key", "rotate", "--alg", "EdDSA")
		if st := f.keyStatuses("EdDSA"); !slices.Equal(st, []string{"active"}) {
			t.Errorf("EdDSA line %v", st)
		}
		if st := f.keyStatuses("ES256"); !slices.Equal(st, []string{"retired", "active"}) {
			t.Errorf("an EdDSA rotation changed the ES256 line: %v", st)
		}

		text := f.must("", "key", "list")
		for _, want := range []string{"KID", first, "retired", "EdDSA"} {
			if !strings.Contains(text, want) {
				t.Errorf("text list lacks %q:\n%s", want, text)
			}
		}
	})

	t.Run("prepublish", func(t *testing.T) {
		f := newFixture(t)
		f.must("", "key", "rotate")
		before := time.Now()
		f.must("", "key", "rotate", "--prepublish", "1h")
		got := f.keys()
		if len(got) != 2 || got[0].Status != "active" || got[1].Status != "announced" {
			t.Fatalf("after a prepublished rotate: %+v", got)
		}
		at, err := time.Parse(time.RFC3339, got[1].ActivatesAt)
		if err != nil {
			t.Fatal(err)
		}
		wantNear(t, "activates_at", at, before.Add(time.Hour))
		f.must("", "key", "rotate", "--prepublish", "2h", "--alg", "EdDSA")
		if st := f.keyStatuses("EdDSA"); !slices.Equal(st, []string{"announced"}) {
			t.Errorf("EdDSA line %v", st)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"HS256", []string{"--alg", "HS256"}},
		{"none", []string{"--alg", "none"}},
		{"lower case", []string{"--alg", "es256"}},
		{"negative prepublish", []string{"--prepublish", "-1h"}},
		{"bad duration", []string{"--prepublish", "later"}},
		{"argument", []string{"ES256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.run("", append([]string{"key", "rotate"}, tc.args...)...)
			wantUsageError(t, err)
			if got := f.keys(); len(got) != 0 {
				t.Errorf("a failed rotate added keys %+v", got)
			}
		})
	}
}

// An explicit flag must beat its environment twin.
func TestKeyRotatePrepublishFlagBeatsEnv(t *testing.T) {
	f := newFixture(t)
	t.Setenv("TOKEND_KEY_PREPUBLISH", "1h")
	f.must("", "key", "rotate", "--prepublish", "0s")
	if st := f.keyStatuses("ES256"); !slices.Equal(st, []string{"active"}) {
		t.Errorf("--prepublish 0s gave %v, want an active key", st)
	}
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

// TestAuditList: what the management commands do is in the audit trail,
// and `audit list` reads it back, filtered.
func TestAuditList(t *testing.T) {
	f := newFixture(t)
	f.must("pw\n", "user", "add", "alice", "--password-stdin", "--argon2-memory", "1024", "--argon2-time", "1")
	c := decodeOne[map[string]string](t, f.must("", "client", "add", "svc", "--json"))
	f.must("", "client", "rotate-secret", c["client_id"], "--overlap", "1m")
	f.must("", "key", "rotate")
	f.must("", "user", "disable", "alice")

	events := decodeOne[[]map[string]any](t, f.must("", "audit", "list", "--json"))
	var names []string
	for _, e := range events {
		names = append(names, e["event"].(string))
		if e["dialect"] != "cli" || e["actor"] != "cli" || e["outcome"] != "success" || e["at"] == "" {
			t.Errorf("event %v", e)
		}
		if strings.Contains(fmt.Sprint(e), c["client_secret"]) {
			t.Fatal("an audit event carries the client secret")
		}
	}
	if want := []string{"user.created", "client.created", "client.secret_rotated", "key.rotated", "user.disabled"}; !slices.Equal(names, want) {
		t.Fatalf("events %v, want %v", names, want)
	}
	bySubject := decodeOne[[]map[string]any](t, f.must("", "audit", "list", "--json", "--subject", c["client_id"]))
	if len(bySubject) != 2 || bySubject[1]["event"] != "client.secret_rotated" {
		t.Fatalf("--subject: %v", bySubject)
	}
	if got := decodeOne[[]map[string]any](t, f.must("", "audit", "list", "--json", "--since", "2999-01-01T00:00:00Z")); len(got) != 0 {
		t.Fatalf("--since in the future: %v", got)
	}
	if got := decodeOne[[]map[string]any](t, f.must("", "audit", "list", "--json", "--since", "1h", "--limit", "1")); len(got) != 1 {
		t.Fatalf("--limit 1: %v", got)
	}
	if out := f.must("", "audit", "list"); !strings.Contains(out, "key.rotated") || !strings.Contains(out, "EVENT") {
		t.Fatalf("text output: %s", out)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--limit", "0"}} {
		_, _, err := f.run("", append([]string{"audit", "list"}, bad...)...)
		wantUsageError(t, err)
	}
}
