package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is a `tokend serve` process started by a test.
type server struct {
	cmd  *exec.Cmd
	addr string
	dir  string
	db   string
	bin  string
	done chan error
	logs *strings.Builder
	// logMu guards logs, written while the process runs.
	logMu sync.Mutex
}

// Logs returns what the process logged so far.
func (s *server) Logs() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.logs.String()
}

var builtBinary string

// tokendBinary builds the binary once per test run.
func tokendBinary(t *testing.T) string {
	t.Helper()
	if builtBinary != "" {
		return builtBinary
	}
	dir, err := os.MkdirTemp("", "tokend-bin")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tokend")
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the binary: %v", err)
	}
	if out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	builtBinary = bin
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs `tokend serve` with args on a fresh database and waits
// until it listens.
func startServer(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	s := &server{addr: freeAddr(t), dir: dir, bin: tokendBinary(t), done: make(chan error, 1), logs: &strings.Builder{}}
	s.db = "sqlite:" + filepath.Join(dir, "tokend.db")
	for i, a := range args {
		if a == "--db" && i+1 < len(args) {
			s.db = args[i+1]
		}
	}
	all := append([]string{"serve", "--addr", s.addr, "--db", s.db}, args...)
	s.cmd = exec.Command(s.bin, all...)
	s.cmd.Env = append(os.Environ(), "TOKEND_DIALECTS=")
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logMu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.logMu.Unlock()
		}
		s.done <- s.cmd.Wait()
	}()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if strings.Contains(err.Error(), "server gave HTTP response") || strings.Contains(err.Error(), "malformed HTTP") {
			break // a TLS server answering plain HTTP: it is up
		}
		select {
		case err := <-s.done:
			t.Fatalf("tokend exited: %v\n%s", err, s.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tokend did not start\n%s", s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// cli runs a management command of the binary against the server's database.
func (s *server) cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, append(args, "--db", s.db)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tokend %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	s := startServer(t, dir, "--tls-cert", certFile, "--tls-key", keyFile)
	client := &http.Client{Transport: checked(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}})}
	resp, err := client.Get("https://" + s.addr + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"issuer":"https://`+s.addr+`"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get("https://" + s.addr + "/healthz"); err == nil {
		t.Fatal("TLS 1.1 must be refused")
	}
	if _, err := http.Get("http://" + s.addr + "/healthz"); err == nil {
		t.Log("plain HTTP to a TLS port got an answer (Go answers 400); fine as long as no token flows")
	}
}

// TestGracefulShutdown sends SIGTERM while a slow login is in flight: the
// login completes, then the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	dir := t.TempDir()
	s := startServer(t, dir, "--shutdown-timeout", "20s")
	// A user whose hash is slow to check keeps a request in flight.
	s.cli(t, "pw\n", "user", "add", "slow", "--password-stdin", "--argon2-memory", "262144", "--argon2-time", "4")
	out := s.cli(t, "", "client", "add", "web", "--public", "--json")
	id := strings.Split(strings.Split(out, `"client_id": "`)[1], `"`)[0]

	result := make(chan string, 1)
	go func() {
		resp, err := http.PostForm("http://"+s.addr+"/oauth2/token", url.Values{
			"grant_type": {"password"}, "username": {"slow"}, "password": {"pw"}, "client_id": {id},
		})
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		resp.Body.Close()
		result <- fmt.Sprint(resp.StatusCode)
	}()
	time.Sleep(500 * time.Millisecond) // let the request reach the server (its hash takes seconds)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := <-result; got != "200" {
		t.Fatalf("the request in flight got %s, want 200\nlogs:\n%s", got, s.Logs())
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tokend did not exit after SIGTERM")
	}
	if _, err := http.Get("http://" + s.addr + "/healthz"); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// TestDialectsSwitch checks --dialects end to end: a dialect switched off
// answers 404 on its paths; one switched on serves them.
func TestDialectsSwitch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	paths := map[string]string{
		"atoti":     "GET /activeviam/jwt/rest/v3/token",
		"simplejwt": "POST /api/v1/token/",
		"ocm":       "POST /system/api/v1/security/token",
		"taiki":     "POST /api/token",
	}
	status := func(s *server, route string) int {
		method, path, _ := strings.Cut(route, " ")
		req, _ := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	off := startServer(t, t.TempDir()) // startServer sets TOKEND_DIALECTS=""
	on := startServer(t, t.TempDir(), "--dialects", "atoti,taiki")
	for name, route := range paths {
		if got := status(off, route); got != 404 {
			t.Errorf("%s off: %s answered %d, want 404", name, route, got)
		}
		got := status(on, route)
		if want := name == "atoti" || name == "taiki"; want == (got == 404) {
			t.Errorf("%s with --dialects atoti,taiki: %s answered %d", name, route, got)
		}
	}
}
