package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// peakRSS reads a process's peak resident set size (VmHWM), in KiB.
func peakRSS(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestLoginFloodIsBounded sends 500 concurrent logins with the default
// argon2id cost (19 MiB each): every request is answered with 200 or 503
// (never a 500, a reset or a hang), and the process's memory stays bounded
// because at most about one hash per core runs at a time.
func TestLoginFloodIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	s := startServer(t, t.TempDir(), "--rate-limit", "off", "--log-level", "warn")
	s.cli(t, "pw-of-alice\n", "user", "add", "alice", "--password-stdin")
	var pub map[string]any
	json.Unmarshal([]byte(s.cli(t, "", "client", "add", "web", "--public", "--json")), &pub)
	before := peakRSS(t, s.cmd.Process.Pid)

	const n = 500
	client := &http.Client{Timeout: 60 * time.Second, Transport: checked(&http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n})}
	statuses := map[int]int{}
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.PostForm("http://"+s.addr+"/oauth2/token", url.Values{
				"grant_type": {"password"}, "username": {"alice"}, "password": {"pw-of-alice"}, "client_id": {pub["client_id"].(string)},
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			resp.Body.Close()
			statuses[resp.StatusCode]++
			if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
				errs = append(errs, fmt.Errorf("503 without Retry-After"))
			}
		}()
	}
	close(start)
	wg.Wait()
	peak := peakRSS(t, s.cmd.Process.Pid)
	t.Logf("500 concurrent logins: statuses %v; peak RSS %d MiB (%d MiB before)", statuses, peak/1024, before/1024)
	if len(errs) > 0 {
		t.Fatalf("%d requests failed: %v", len(errs), errs[0])
	}
	for code := range statuses {
		if code != 200 && code != 503 && code != 429 {
			t.Fatalf("unexpected status %d: %v", code, statuses)
		}
	}
	if statuses[200] == 0 {
		t.Fatal("no login succeeded")
	}
	if peak > 400*1024 {
		t.Fatalf("peak RSS %d MiB: hashing is not bounded", peak/1024)
	}
}

// TestSlowClients holds 200 connections that trickle their headers: a
// normal request is still served at once, the slow ones are cut by the
// read-header timeout, and an oversized header block is refused.
func TestSlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	s := startServer(t, t.TempDir(), "--log-level", "error")
	var conns []net.Conn
	for range 200 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /oauth2/token HTTP/1.1\r\nHost: x\r\n")
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // keep trickling
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				for _, c := range conns {
					c.Write([]byte("X-Slow: 1\r\n"))
				}
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	resp, err := http.Get("http://" + s.addr + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := time.Since(start); resp.StatusCode != 200 || d > time.Second {
		t.Fatalf("a normal request behind 200 slow clients: %d in %s", resp.StatusCode, d)
	}

	// The read-header timeout (5 s) closes the slow connections.
	conns[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conns[0])
	if _, err := r.ReadString('\n'); err == nil {
		// Go answers 408 before closing; then the connection ends.
		if _, err := r.ReadString(0); err == nil {
			t.Fatal("a slow connection was not closed")
		}
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a slow connection was still open after 10 s")
	}

	// An oversized header block is refused.
	req, _ := http.NewRequest("GET", "http://"+s.addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err = http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("oversized headers: %d", resp.StatusCode)
		}
	}
}

// TestBinaryLogsCarryNoSecrets runs the flows of every front end against
// the binary at debug level, failures included, and scans everything it
// logged for the passwords, secrets and tokens that went through it.
func TestBinaryLogsCarryNoSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	s := startServer(t, t.TempDir(), "--log-level", "debug", "--dialects", "atoti,simplejwt,ocm,taiki", "--lockout-threshold", "2", "--refresh-grace", "0")
	secrets := []string{"pw-of-alice", "wrong-pw-of-alice"}
	s.cli(t, "pw-of-alice\n", "user", "add", "alice", "--password-stdin", "--role", "ROLE_USER", "--argon2-memory", "1024", "--argon2-time", "1")
	var svc map[string]string
	json.Unmarshal([]byte(s.cli(t, "", "client", "add", "svc", "--grant", "client_credentials", "--grant", "password", "--grant", "refresh_token", "--json")), &svc)
	secrets = append(secrets, svc["client_secret"])
	base := "http://" + s.addr

	send := func(method, path, ct, body string, hdr ...string) map[string]any {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		r := do(req)
		if r.err != nil {
			t.Fatal(r.err)
		}
		for _, k := range []string{"access_token", "refresh_token", "token", "access", "refresh", "accessToken", "refreshToken"} {
			if str, ok := r.body[k].(string); ok && str != "" {
				secrets = append(secrets, str)
			}
		}
		return r.body
	}
	form := "application/x-www-form-urlencoded"
	basic := func(u, p string) string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(u, p)
		return req.Header.Get("Authorization")
	}
	svcAuth := basic(svc["client_id"], svc["client_secret"])
	cc := send("POST", "/oauth2/token", form, "grant_type=client_credentials", "Authorization", svcAuth)
	pw := send("POST", "/oauth2/token", form, "grant_type=password&username=alice&password=pw-of-alice", "Authorization", svcAuth)
	send("POST", "/oauth2/token", form, "grant_type=refresh_token&refresh_token="+url.QueryEscape(pw["refresh_token"].(string)), "Authorization", svcAuth)
	send("POST", "/oauth2/token", form, "grant_type=refresh_token&refresh_token="+url.QueryEscape(pw["refresh_token"].(string)), "Authorization", svcAuth)
	send("POST", "/oauth2/introspect", form, "token="+cc["access_token"].(string), "Authorization", svcAuth)
	send("GET", "/userinfo", "", "", "Authorization", "Bearer "+pw["access_token"].(string))
	send("POST", "/oauth2/revoke", form, "token="+cc["access_token"].(string), "Authorization", svcAuth)
	send("POST", "/oauth2/token", form, "grant_type=client_credentials", "Authorization", basic(svc["client_id"], "wrong-"+svc["client_secret"]))
	at := send("GET", "/activeviam/jwt/rest/v3/token", "", "", "Authorization", basic("alice", "pw-of-alice"))
	send("GET", "/activeviam/jwt/rest/v3/token", "", "", "Authorization", "Jwt "+at["token"].(string))
	sj := send("POST", "/api/v1/token/", "application/json", `{"username":"alice","password":"pw-of-alice"}`)
	send("POST", "/api/v1/token/refresh/", "application/json", `{"refresh":"`+sj["refresh"].(string)+`"}`)
	send("POST", "/api/v1/token/blacklist/", "application/json", `{"refresh":"`+sj["refresh"].(string)+`"}`)
	oc := send("POST", "/system/api/v1/security/token", "", "", "Authorization", basic("alice", "pw-of-alice"))
	send("POST", "/system/api/v1/security/token", "application/json", `{"refreshToken":"`+oc["refreshToken"].(string)+`"}`)
	send("POST", "/api/token", "application/json", `{"api_key":"`+svc["client_id"]+`","api_secret":"`+svc["client_secret"]+`"}`)
	send("POST", "/api/token", "application/json", `{"api_key":"`+svc["client_id"]+`","api_secret":"wrong-pw-of-alice"}`)
	for range 3 { // into the lockout
		send("POST", "/oauth2/token", form, "grant_type=password&username=alice&password=wrong-pw-of-alice", "Authorization", svcAuth)
	}
	s.cli(t, "", "client", "rotate-secret", svc["client_id"])
	s.cli(t, "", "key", "rotate")
	time.Sleep(300 * time.Millisecond) // the watcher's sync and the audit batch log too
	s.cmd.Process.Signal(os.Interrupt)
	<-s.done

	logs := s.Logs()
	if !strings.Contains(logs, "refresh token reuse") {
		t.Fatalf("expected the reuse to be logged at least; logs:\n%s", logs)
	}
	for _, sec := range secrets {
		if strings.Contains(logs, sec) {
			t.Errorf("the logs carry a secret or token (%.12s...)", sec)
		}
		if i := strings.LastIndex(sec, "."); i > 0 && len(sec)-i > 20 && strings.Contains(logs, sec[i+1:]) {
			t.Errorf("the logs carry a token signature")
		}
	}
}
