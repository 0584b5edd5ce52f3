package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The keys of these tests: text, as a Django SIGNING_KEY is.
const (
	testSJKey    = "django-signing-key-of-this-deployment-0123456789"
	testTaikiKey = "taiki-signing-key-of-this-deployment-abcdefghijk"
)

// served is a `tokend serve` a test started: its exit status if it
// exited (-1 while it runs), its address if it listens, its --db, and its
// log so far.
type served struct {
	code     int
	addr, db string
	logs     func() string
}

// serveEnv runs `tokend serve` with args and extra environment variables
// (every dialect on) until it exits or listens.
func serveEnv(t *testing.T, env []string, args ...string) served {
	t.Helper()
	db := "sqlite:" + filepath.Join(t.TempDir(), "tokend.db")
	addr := freeAddr(t)
	cmd := exec.Command(tokendBinary(t), append([]string{"serve", "--addr", addr, "--db", db}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var buf lockedBuffer
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			buf.write(sc.Text() + "\n")
		}
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return served{code: cmd.ProcessState.ExitCode(), db: db, logs: buf.String}
		default:
		}
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return served{code: -1, addr: addr, db: db, logs: buf.String}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("tokend neither started nor exited\n%s", buf.String())
	return served{}
}

// lockedBuffer is a log written by one goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) write(s string) { b.mu.Lock(); b.buf.WriteString(s); b.mu.Unlock() }

func (b *lockedBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// TestSymmetricFlags checks the flags of symmetric signing: every mistake
// is a usage error that names the flag and never shows a key.
func TestSymmetricFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	keyFile := filepath.Join(t.TempDir(), "sj.key")
	os.WriteFile(keyFile, []byte(testSJKey+"\n"), 0o600)
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no key", nil, []string{"--simplejwt-alg", "HS256"}, "--simplejwt-signing-key-file or TOKEND_SIMPLEJWT_SIGNING_KEY"},
		{"short key", []string{"TOKEND_SIMPLEJWT_SIGNING_KEY=short-key-of-31-bytes-xxxxxxxxx"}, []string{"--simplejwt-alg", "HS256"}, "at least 32 bytes"},
		{"short key for HS512", nil, []string{"--simplejwt-alg", "HS512", "--simplejwt-signing-key-file", keyFile}, "at least 64 bytes"},
		{"key without an HS algorithm", []string{"TOKEND_SIMPLEJWT_SIGNING_KEY=" + testSJKey}, nil, "--simplejwt-alg HS256, HS384 or HS512 only"},
		{"key file without an HS algorithm", nil, []string{"--taiki-signing-key-file", keyFile}, "--taiki-alg HS256, HS384 or HS512 only"},
		{"HS256 for atoti", nil, []string{"--atoti-alg", "HS256"}, "--atoti-alg"},
		{"HS256 as the default", nil, []string{"--alg", "HS256"}, "--alg"},
		{"one key for two dialects", []string{"TOKEND_SIMPLEJWT_SIGNING_KEY=" + testSJKey},
			[]string{"--simplejwt-alg", "HS256", "--taiki-alg", "HS256", "--taiki-signing-key-file", keyFile}, "same signing key"},
		{"obtain status", nil, []string{"--simplejwt-obtain-status", "402"}, "want 400 or 401"},
		{"claim name tokend writes", nil, []string{"--simplejwt-user-id-claim", "sub"}, `"sub"`},
		{"two claims one name", nil, []string{"--taiki-user-id-claim", "k", "--taiki-token-type-claim", "k"}, `"k"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := serveEnv(t, c.env, c.args...)
			out := s.logs()
			if s.code != 2 || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want 2 with %q:\n%s", s.code, c.want, out)
			}
			if strings.Contains(out, testSJKey) || strings.Contains(out, "short-key-of") {
				t.Fatalf("a key in the error:\n%s", out)
			}
		})
	}
}

// TestSymmetricServe runs simplejwt on HS256 with its key from the
// environment and taiki on HS256 with its key from a file: their tokens
// verify with those keys, the JWKS holds neither, discovery says so, and
// no key is logged.
func TestSymmetricServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	keyFile := filepath.Join(t.TempDir(), "taiki.key")
	os.WriteFile(keyFile, []byte(testTaikiKey+"\n"), 0o600)
	s := serveEnv(t, []string{"TOKEND_SIMPLEJWT_SIGNING_KEY=" + testSJKey, "TOKEND_LOG_LEVEL=debug"},
		"--simplejwt-alg", "HS256", "--taiki-alg", "HS256", "--taiki-signing-key-file", keyFile, "--simplejwt-obtain-status", "401")
	if s.addr == "" {
		t.Fatalf("exit %d\n%s", s.code, s.logs())
	}
	base := "http://" + s.addr
	cli := func(stdin string, args ...string) []byte {
		cmd := exec.Command(tokendBinary(t), append(args, "--db", s.db)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tokend %v: %v", args, err)
		}
		return out
	}
	post := func(path, body string) (int, http.Header, []byte) {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	// The stock-simplejwt answer to a refused login.
	if status, h, b := post("/api/v1/token/", `{"username":"nobody","password":"x"}`); status != 401 || h.Get("WWW-Authenticate") != `Bearer realm="api"` {
		t.Fatalf("refused login: %d %v %s", status, h, b)
	}
	// Tokens of both dialects verify with their keys, as the Django
	// services and the Taiki app hold them.
	cli("pw-of-alice\n", append([]string{"user", "add", "alice", "--password-stdin"}, cheapArgon...)...)
	var app map[string]string
	json.Unmarshal(cli("", "client", "add", "app", "--grant", "client_credentials", "--json"), &app)
	tokens := map[string]string{}
	for deadline := time.Now().Add(5 * time.Second); len(tokens) < 2 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var m map[string]string
		if status, _, b := post("/api/v1/token/", `{"username":"alice","password":"pw-of-alice"}`); status == 200 && json.Unmarshal(b, &m) == nil {
			tokens[testSJKey] = m["access"]
		}
		if status, _, b := post("/api/token", `{"api_key":"`+app["client_id"]+`","api_secret":"`+app["client_secret"]+`"}`); status == 200 && json.Unmarshal(b, &m) == nil {
			tokens[testTaikiKey] = m["access_token"]
		}
	}
	if len(tokens) < 2 {
		t.Fatalf("tokens %v\n%s", tokens, s.logs())
	}
	for key, tok := range tokens {
		parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.HS256})
		if err != nil {
			t.Fatal(err)
		}
		if err := parsed.Claims([]byte(key), &map[string]any{}); err != nil {
			t.Fatalf("a token does not verify with its dialect's key: %v", err)
		}
	}
	for _, path := range []string{"/.well-known/jwks.json", "/.well-known/openid-configuration", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), testSJKey) || strings.Contains(string(b), testTaikiKey) || strings.Contains(string(b), `"HS256","kty"`) {
			t.Fatalf("%s shows a symmetric key: %s", path, b)
		}
		if path == "/.well-known/openid-configuration" && !strings.Contains(string(b), `"tokend_symmetric_signing"`) {
			t.Fatalf("discovery does not name the symmetric signing: %s", b)
		}
	}
	if l := s.logs(); strings.Contains(l, testSJKey) || strings.Contains(l, testTaikiKey) {
		t.Fatalf("a key in the log:\n%s", l)
	}
}
