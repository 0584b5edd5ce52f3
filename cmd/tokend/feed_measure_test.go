package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/verify"
)

// Measurements of the revocation feed, for BENCHMARKS.md. They take
// minutes and assert nothing about time, so they run only when asked:
//
//	TOKEND_MEASURE=1 go test -run 'TestMeasure' -v -timeout 30m ./cmd/tokend/
//
// (with TOKEND_TEST_POSTGRES set, the latency is also measured on two
// PostgreSQL nodes).

func measuring(t *testing.T) {
	if os.Getenv("TOKEND_MEASURE") == "" {
		t.Skip("a measurement: set TOKEND_MEASURE=1")
	}
}

// TestMeasureRevocationLatency: 100 verifiers subscribed to the feed; a
// token is revoked (at /oauth2/revoke, or by disabling its user with the
// CLI); each verifier checks the token every millisecond. The latency is
// from the start of the revoke call to the verifier's first refusal.
func TestMeasureRevocationLatency(t *testing.T) {
	measuring(t)
	const verifiers = 100
	t.Run("sqlite", func(t *testing.T) {
		s := startServer(t, t.TempDir())
		measureLatency(t, s, []*server{s}, "http://"+s.addr, verifiers)
	})
	t.Run("postgres two nodes", func(t *testing.T) {
		dsn := pgDSN(t)
		a := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn)
		b := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn)
		// Revoked at a; half the verifiers follow a, half b.
		measureLatency(t, a, []*server{a, b}, clusterIssuer, verifiers)
	})
}

func measureLatency(t *testing.T, at *server, follow []*server, issuer string, n int) {
	f := provision(t, at)
	const users = 10
	for i := range users {
		at.cli(t, "pw-of-user\n", "user", "add", fmt.Sprintf("user%d", i), "--password-stdin", "--argon2-memory", "1024", "--argon2-time", "1")
	}
	vs := make([]*verify.Verifier, n)
	for i := range vs {
		node := follow[i%len(follow)]
		dial := &net.Dialer{}
		client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dial.DialContext(ctx, network, node.addr)
		}}}
		v, err := verify.New(t.Context(), issuer, verify.Options{
			Audience: issuer, Algorithms: []string{"ES256"}, ClientID: f.clientID, ClientSecret: f.clientSecret, HTTPClient: client,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		vs[i] = v
	}
	// measure revokes the token with do and returns each verifier's latency.
	measure := func(tok string, do func()) []time.Duration {
		for _, v := range vs {
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Fatalf("before the revocation: %v", err)
			}
		}
		out := make([]time.Duration, len(vs))
		var wg sync.WaitGroup
		var start time.Time
		ready := make(chan struct{})
		for i, v := range vs {
			wg.Go(func() {
				<-ready
				deadline := time.Now().Add(30 * time.Second)
				for time.Now().Before(deadline) {
					if _, err := v.Verify(t.Context(), tok); errors.Is(err, verify.ErrRevoked) {
						out[i] = time.Since(start)
						return
					}
					time.Sleep(time.Millisecond)
				}
				out[i] = -1
			})
		}
		start = time.Now()
		close(ready)
		do()
		wg.Wait()
		return out
	}
	var byRevoke, byCLI [][]time.Duration
	for range 30 {
		tok := at.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, f.clientSecret).str("access_token")
		byRevoke = append(byRevoke, measure(tok, func() {
			if r := at.post("/oauth2/revoke", url.Values{"token": {tok}}, f.clientID, f.clientSecret); r.status != 200 {
				t.Errorf("revoke: %d", r.status)
			}
		}))
		time.Sleep(100 * time.Millisecond)
	}
	for i := range users {
		name := fmt.Sprintf("user%d", i)
		tok := at.post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {name}, "password": {"pw-of-user"}, "client_id": {f.publicID}}, "", "").str("access_token")
		byCLI = append(byCLI, measure(tok, func() {
			if out, err := exec.Command(at.bin, "user", "disable", name, "--db", at.db).CombinedOutput(); err != nil {
				t.Errorf("user disable: %v %s", err, out)
			}
		}))
		time.Sleep(100 * time.Millisecond)
	}
	report := func(what string, runs [][]time.Duration, pick func(i int) bool) {
		var all []time.Duration
		missed := 0
		for _, run := range runs {
			for i, d := range run {
				if !pick(i) {
					continue
				}
				if d < 0 {
					missed++
					continue
				}
				all = append(all, d)
			}
		}
		slices.Sort(all)
		q := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
		t.Logf("%s: %d refusals (%d revocations), p50 %v, p99 %v, max %v, missed %d",
			what, len(all), len(runs), q(0.50).Round(time.Millisecond), q(0.99).Round(time.Millisecond), all[len(all)-1].Round(time.Millisecond), missed)
	}
	every := func(int) bool { return true }
	report("/oauth2/revoke, all verifiers", byRevoke, every)
	report("CLI user disable, all verifiers", byCLI, every)
	if len(follow) > 1 {
		other := func(i int) bool { return i%len(follow) != 0 }
		report("/oauth2/revoke, verifiers of the other node", byRevoke, other)
		report("CLI user disable, verifiers of the other node", byCLI, other)
	}
}

// TestMeasureFeedIdleCost: tokend's CPU time and resident memory, idle,
// then with 1,000 subscribers holding long polls (wait=30s, renewed as
// each ends), each over a window of a minute.
func TestMeasureFeedIdleCost(t *testing.T) {
	measuring(t)
	const subscribers, window = 1000, time.Minute
	s := startServer(t, t.TempDir())
	f := provision(t, s)
	pid := s.cmd.Process.Pid
	time.Sleep(5 * time.Second)

	cpu0, rss0 := procStats(t, pid)
	time.Sleep(window)
	cpu1, rss1 := procStats(t, pid)
	t.Logf("idle: CPU %v per minute, RSS %d KiB", (cpu1 - cpu0).Round(time.Millisecond), rss1)
	_ = rss0

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * subscribers}}
	start, err := s.feed("", f.clientID, f.clientSecret)
	if err != nil {
		t.Fatal(err)
	}
	var polls sync.WaitGroup
	var mu sync.Mutex
	answered, failed := 0, 0
	for range subscribers {
		polls.Go(func() {
			cursor := start.Cursor
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+"/oauth2/revocations?after="+cursor+"&wait=30s", nil)
				req.SetBasicAuth(f.clientID, f.clientSecret)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						failed++
						mu.Unlock()
						time.Sleep(time.Second)
					}
					continue
				}
				var a feedAnswer
				json.NewDecoder(resp.Body).Decode(&a)
				resp.Body.Close()
				if a.Cursor != "" {
					cursor = a.Cursor
				}
				mu.Lock()
				answered++
				mu.Unlock()
			}
		})
	}
	time.Sleep(5 * time.Second) // all connected
	cpu2, _ := procStats(t, pid)
	time.Sleep(window)
	cpu3, rss3 := procStats(t, pid)
	cancel()
	polls.Wait()
	t.Logf("%d subscribers: CPU %v per minute, RSS %d KiB (+%d KiB over idle, %d bytes per subscriber); %d answers, %d failures",
		subscribers, (cpu3 - cpu2).Round(time.Millisecond), rss3, rss3-rss1, (rss3-rss1)*1024/subscribers, answered, failed)
}

// procStats returns a process's CPU time (user + system) and resident set.
func procStats(t *testing.T, pid int) (time.Duration, int) {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Fields after the command (which may hold spaces) in parentheses.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	const ticks = 100 // USER_HZ on Linux
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	rss := 0
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return time.Duration(utime+stime) * time.Second / ticks, rss
}
