package main

import (
	"bytes"
	"flag"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// printedLine returns the line of --print-config's output for a key.
func printedLine(t *testing.T, out, key string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, key+" = ") {
			return l
		}
	}
	t.Fatalf("no line for %s in:\n%s", key, out)
	return ""
}

// TestConfigPrecedence: flags win over environment variables, which win
// over the config file, which wins over the defaults; --print-config shows
// each value and where it came from.
func TestConfigPrecedence(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := tokendBinary(t)
	file := writeFile(t, "tokend.toml", `# every level sets some
addr = "127.0.0.1:9901"
access-ttl = "11m"
refresh-grace = "11s"
log-level = "debug"
lockout-threshold = 7
simplejwt-rotate = true
`)
	r := runBinary(t, bin, []string{"TOKEND_ACCESS_TTL=22m", "TOKEND_REFRESH_GRACE=22s", "TOKEND_JWKS_MAX_AGE=2m"}, "",
		"serve", "--config", file, "--print-config", "--refresh-grace", "33s", "--db", "sqlite:"+filepath.Join(t.TempDir(), "x.db"))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for key, want := range map[string]string{
		"refresh-grace":     `refresh-grace = "33s" # flag`,
		"access-ttl":        `access-ttl = "22m0s" # environment TOKEND_ACCESS_TTL`,
		"jwks-max-age":      `jwks-max-age = "2m0s" # environment TOKEND_JWKS_MAX_AGE`,
		"addr":              `addr = "127.0.0.1:9901" # ` + file + ` line 2`,
		"log-level":         `log-level = "debug" # ` + file + ` line 5`,
		"lockout-threshold": `lockout-threshold = 7 # ` + file + ` line 6`,
		"simplejwt-rotate":  `simplejwt-rotate = true # ` + file + ` line 7`,
		"alg":               `alg = "ES256" # default`,
	} {
		if got := printedLine(t, r.stdout, key); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}

	// The printed configuration is itself a config file that checks.
	printed := writeFile(t, "printed.toml", r.stdout)
	if r := runBinary(t, bin, nil, "", "config", "check", printed); r.code != 0 {
		t.Errorf("config check of --print-config's output: exit %d %s", r.code, r.stderr)
	}

	// TOKEND_CONFIG names the file too (--config has its twin).
	r = runBinary(t, bin, []string{"TOKEND_CONFIG=" + file}, "", "serve", "--print-config")
	if got := printedLine(t, r.stdout, "addr"); !strings.Contains(got, "9901") {
		t.Errorf("TOKEND_CONFIG ignored: %s", got)
	}
}

// TestConfigFileServes: a server started with --config runs with the file's
// settings.
func TestConfigFileServes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	dir := t.TempDir()
	file := writeFile(t, "tokend.toml", "access-ttl = \"7m\"\nissuer = \"http://from.config.test\"\n")
	s := startServer(t, dir, "--config", file)
	f := provisionOps(t, s, 0)
	r := s.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.svcID, f.svcSecret)
	if r.status != 200 || r.body["expires_in"] != float64(420) {
		t.Errorf("token with the file's access-ttl: %d %v", r.status, r.body)
	}
	if d := s.get("/.well-known/oauth-authorization-server"); d.str("issuer") != "http://from.config.test" {
		t.Errorf("issuer %q, want the file's", d.str("issuer"))
	}
}

// TestConfigFileErrors: every problem of a file at once, each with its key
// and line, from `serve --config` (a usage error, the store untouched) and
// from `config check`.
func TestConfigFileErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := tokendBinary(t)
	file := writeFile(t, "bad.toml", `addr = "nowhere"
access_ttl = "10m"
refresh-ttl = 15
lockout-threshold = "many"
alg = "HS256"
"hash-workers" = true
print-config = true
dialects = ["atoti", "ocm"]

[serve]
db = "sqlite:x.db"
`)
	want := []string{
		`bad.toml:1: addr: --addr "nowhere"`,
		`bad.toml:2: access_ttl: unknown key; did you mean access-ttl?`,
		`bad.toml:3: refresh-ttl: invalid value "15": want a duration`,
		`bad.toml:4: lockout-threshold: invalid value "many": want a whole number`,
		`bad.toml:5: alg: --alg "HS256"`,
		`bad.toml:6: hash-workers: invalid value "true": want a whole number`,
		`bad.toml:7: print-config: not a setting a config file can hold`,
		`bad.toml:8: dialects: an array`,
		`bad.toml:10: serve: a table`,
	}
	db := filepath.Join(t.TempDir(), "never.db")
	serveRun := runBinary(t, bin, nil, "", "serve", "--config", file, "--db", "sqlite:"+db)
	checkRun := runBinary(t, bin, nil, "", "config", "check", file)
	for _, tc := range []struct {
		name string
		r    binResult
		code int
	}{{"serve", serveRun, 2}, {"config check", checkRun, 1}} {
		if tc.r.code != tc.code {
			t.Errorf("%s: exit %d, want %d", tc.name, tc.r.code, tc.code)
		}
		last := -1
		for _, w := range want {
			i := strings.Index(tc.r.stderr, w)
			if i < 0 {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, w, tc.r.stderr)
				continue
			}
			if i < last {
				t.Errorf("%s: %q is out of line order", tc.name, w)
			}
			last = i
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("serve with a bad config file opened the store")
	}

	for _, tc := range []struct{ name, content, want string }{
		{"not TOML", "addr = = 1\n", "bad.toml:1: not valid TOML"},
		{"no file", "", "read config file"},
	} {
		path := filepath.Join(t.TempDir(), "bad.toml")
		if tc.content != "" {
			os.WriteFile(path, []byte(tc.content), 0o600)
		}
		if r := runBinary(t, bin, nil, "", "config", "check", path); r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d %q, want %q", tc.name, r.code, r.stderr, tc.want)
		}
	}
	good := writeFile(t, "good.toml", "addr = \"0.0.0.0:8080\"\nrate-limit = \"off\"\n")
	if r := runBinary(t, bin, nil, "", "config", "check", good); r.code != 0 || !strings.Contains(r.stdout, "ok (2 settings)") {
		t.Errorf("config check of a good file: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// TestConfigFileTakesEveryFlag: the file's keys are serve's flags, all of
// them, whatever flags are added: each flag's default, written in the file,
// checks.
func TestConfigFileTakesEveryFlag(t *testing.T) {
	hermeticEnv(t)
	var c serveConfig
	var cf configFlags
	fs := serveFlags(&c, &cf, io.Discard)
	var b strings.Builder
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || f.Name == "print-config" {
			return
		}
		b.WriteString(f.Name + " = " + strconv.Quote(f.DefValue) + "\n")
		n++
	})
	path := writeFile(t, "all.toml", b.String())
	out, errOut, err := runCLI(t, "", "config", "check", path)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, errOut, b.String())
	}
	if !strings.Contains(out, "ok (") || !strings.Contains(out, " settings)") {
		t.Errorf("output %q", out)
	}
	if want := "ok (" + strconv.Itoa(n) + " settings)"; !strings.Contains(out, want) {
		t.Errorf("output %q, want %q", out, want)
	}
}

// TestPrintConfigRedacts: --print-config never shows a secret: the
// database password (URL, query or key=value form), the master key, or the
// value of a flag named for a secret.
func TestPrintConfigRedacts(t *testing.T) {
	hermeticEnv(t)
	t.Setenv("TOKEND_MASTER_KEY", "master-key-material-0123456789abcdef0123456789")
	for _, tc := range []struct{ db, keep string }{
		{"postgres://tokend:hunter2@db.example:5432/tokend?sslmode=require", "postgres://tokend:REDACTED@db.example:5432/tokend"},
		{"postgres://tokend@db.example/tokend?password=hunter2&sslmode=require", "password=REDACTED"},
		{"host=db.example user=tokend password=hunter2 dbname=tokend", "password=REDACTED dbname=tokend"},
	} {
		out, errOut, err := runCLI(t, "", "serve", "--print-config", "--db", tc.db)
		if err != nil {
			t.Fatalf("%v %s", err, errOut)
		}
		for _, secret := range []string{"hunter2", "master-key-material"} {
			if strings.Contains(out, secret) {
				t.Errorf("--print-config shows %q:\n%s", secret, out)
			}
		}
		if !strings.Contains(out, tc.keep) || !strings.Contains(out, "TOKEND_MASTER_KEY (REDACTED)") {
			t.Errorf("--print-config of %s:\n%s", tc.db, out)
		}
	}
	// A flag named for a secret (say, one added later) is redacted whole;
	// a flag naming a file that holds one is not.
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.String("hs256-key", "shared-secret-value", "")
	fs.String("admin-client-secret", "another-secret", "")
	fs.String("master-key-file", "/etc/tokend/master.key", "")
	var buf bytes.Buffer
	if err := (&configFlags{}).printConfig(fs, nil, &buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`hs256-key = "REDACTED"`, `admin-client-secret = "REDACTED"`, `master-key-file = "/etc/tokend/master.key"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("lacks %s:\n%s", want, buf.String())
		}
	}
}
