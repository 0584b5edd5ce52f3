package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// fakeTokend answers like tokend on every endpoint the scenarios use, with
// real ES256 and RS512 JWTs, and checks what tokend would check: client
// and user credentials, the refresh-token rotation of each session, the
// taiki user id.
type fakeTokend struct {
	t        *testing.T
	es, rs   jose.Signer
	jwks     []byte
	mu       sync.Mutex
	sessions map[string]int // refresh token -> 1 while current
	reused   atomic.Int64   // refresh tokens presented after rotation
	taikiIDs atomic.Int64   // taiki end users created
	// fail, when set, may answer a request with a status of its own.
	fail func(r *http.Request) int
}

const (
	fcID, fcSecret, fcPublic = "cid", "csecret", "pub"
	fcUser, fcPassword       = "alice", "correct horse"
	fcTaikiUser              = "0190d6a0-0000-7000-8000-000000000001"
)

var (
	fakeKeysOnce       sync.Once
	fakeES, fakeRS     jose.Signer
	fakeJWKS           []byte
	errFakeKeysMissing = errors.New("fake keys not made")
)

// fakeKeys makes the fake's keys once for all tests (an RSA key is slow to
// make under the race detector).
func fakeKeys(t *testing.T) (jose.Signer, jose.Signer, []byte) {
	t.Helper()
	fakeKeysOnce.Do(func() {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return
		}
		fakeES, _ = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: ec, KeyID: strings.Repeat("e", 43)}}, (&jose.SignerOptions{}).WithType("at+jwt"))
		fakeRS, _ = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS512, Key: jose.JSONWebKey{Key: rk, KeyID: strings.Repeat("r", 43)}}, (&jose.SignerOptions{}).WithType("JWT"))
		fakeJWKS, _ = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: ec.Public(), KeyID: strings.Repeat("e", 43), Algorithm: "ES256", Use: "sig"},
			{Key: rk.Public(), KeyID: strings.Repeat("r", 43), Algorithm: "RS512", Use: "sig"},
		}})
	})
	if fakeES == nil || fakeRS == nil {
		t.Fatal(errFakeKeysMissing)
	}
	return fakeES, fakeRS, fakeJWKS
}

func newFakeTokend(t *testing.T) (*fakeTokend, *httptest.Server) {
	t.Helper()
	f := &fakeTokend{t: t, sessions: map[string]int{}}
	f.es, f.rs, f.jwks = fakeKeys(t)
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeTokend) sign(s jose.Signer, extra string) string {
	var jti [16]byte
	rand.Read(jti[:])
	now := time.Now().Unix()
	payload := fmt.Sprintf(`{"iss":"http://fake","sub":"alice","aud":["http://fake"],"iat":%d,"exp":%d,"jti":"%s"%s}`, now, now+900, hex.EncodeToString(jti[:]), extra)
	jws, err := s.Sign([]byte(payload))
	if err != nil {
		panic(err)
	}
	tok, _ := jws.CompactSerialize()
	return tok
}

func (f *fakeTokend) newRefresh() string {
	var b [24]byte
	rand.Read(b[:])
	rt := "rt1_" + hex.EncodeToString(b[:])
	f.mu.Lock()
	f.sessions[rt] = 1
	f.mu.Unlock()
	return rt
}

func write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeTokend) handler() http.Handler {
	mux := http.NewServeMux()
	userBasic := func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		return ok && u == fcUser && p == fcPassword
	}
	clientBasic := func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		return ok && u == fcID && p == fcSecret
	}
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		switch r.PostForm.Get("grant_type") {
		case "client_credentials":
			if !clientBasic(r) {
				write(w, 401, map[string]string{"error": "invalid_client"})
				return
			}
			write(w, 200, map[string]any{"access_token": f.sign(f.es, `,"client_id":"cid"`), "token_type": "Bearer", "expires_in": 900})
		case "password":
			if r.PostForm.Get("client_id") != fcPublic || r.PostForm.Get("username") != fcUser || r.PostForm.Get("password") != fcPassword {
				write(w, 400, map[string]string{"error": "invalid_grant"})
				return
			}
			write(w, 200, map[string]any{"access_token": f.sign(f.es, `,"sid":"s"`), "token_type": "Bearer", "expires_in": 900, "refresh_token": f.newRefresh()})
		case "refresh_token":
			rt := r.PostForm.Get("refresh_token")
			f.mu.Lock()
			current := f.sessions[rt] == 1
			delete(f.sessions, rt)
			f.mu.Unlock()
			if !current || r.PostForm.Get("client_id") != fcPublic {
				f.reused.Add(1)
				write(w, 400, map[string]string{"error": "invalid_grant"})
				return
			}
			write(w, 200, map[string]any{"access_token": f.sign(f.es, `,"sid":"s"`), "token_type": "Bearer", "expires_in": 900, "refresh_token": f.newRefresh()})
		default:
			write(w, 400, map[string]string{"error": "unsupported_grant_type"})
		}
	})
	mux.HandleFunc("POST /oauth2/introspect", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if !clientBasic(r) {
			write(w, 401, map[string]string{"error": "invalid_client"})
			return
		}
		if strings.Count(r.PostForm.Get("token"), ".") != 2 {
			write(w, 200, map[string]bool{"active": false})
			return
		}
		write(w, 200, map[string]any{"active": true, "sub": "cid", "client_id": "cid"})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(f.jwks)
	})
	mux.HandleFunc("GET /activeviam/jwt/rest/v3/token", func(w http.ResponseWriter, r *http.Request) {
		if !userBasic(r) {
			write(w, 401, map[string]any{})
			return
		}
		write(w, 200, map[string]string{"token": f.sign(f.rs, `,"authorities":["ROLE_USER"]`)})
	})
	mux.HandleFunc("POST /api/v1/token/", func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		if json.NewDecoder(r.Body).Decode(&b) != nil || b["username"] != fcUser || b["password"] != fcPassword {
			write(w, 400, map[string]string{"detail": "No active account found with the given credentials"})
			return
		}
		write(w, 200, map[string]string{"refresh": f.sign(f.es, `,"token_type":"refresh"`), "access": f.sign(f.es, `,"token_type":"access"`)})
	})
	mux.HandleFunc("POST /system/api/v1/security/token", func(w http.ResponseWriter, r *http.Request) {
		if !userBasic(r) {
			write(w, 401, map[string]any{"status": 401})
			return
		}
		write(w, 200, map[string]any{"accessToken": f.sign(f.es, ""), "tokenType": "Bearer", "expiresInMillis": 1209600000, "refreshToken": f.newRefresh()})
	})
	mux.HandleFunc("POST /api/token", func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		if json.NewDecoder(r.Body).Decode(&b) != nil || b["api_key"] != fcID || b["api_secret"] != fcSecret {
			write(w, 401, map[string]string{"error": "invalid_client"})
			return
		}
		switch b["taiki_user_id"] {
		case "":
			f.taikiIDs.Add(1)
		case fcTaikiUser:
		default:
			write(w, 401, map[string]string{"error": "invalid_client"})
			return
		}
		write(w, 200, map[string]string{"access_token": f.sign(f.es, `,"mode":"production"`), "taiki_user_id": fcTaikiUser})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.fail != nil {
			if st := f.fail(r); st != 0 {
				write(w, st, map[string]string{"error": "injected"})
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// runBench runs the tool as a user would and returns its JSON reports by
// scenario, and its error.
func runBench(t *testing.T, args ...string) (map[string]*report, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"-json", "-argon2-memory", "64", "-argon2-time", "1"}, args...), &stdout, &stderr)
	reps := map[string]*report{}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("output line is not JSON: %v\n%s", err, sc.Text())
		}
		reps[r.Scenario] = &r
	}
	return reps, stderr.String(), err
}

func credArgs(u string) []string {
	return []string{"-url", u, "-client-id", fcID, "-client-secret", fcSecret, "-public-client-id", fcPublic, "-username", fcUser, "-password", fcPassword}
}

func TestEveryScenarioAgainstAFakeTokend(t *testing.T) {
	t.Parallel()
	f, srv := newFakeTokend(t)
	reps, stderr, err := runBench(t, append(credArgs(srv.URL), "-scenario", "all", "-c", "4", "-d", "300ms", "-warmup", "20ms")...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if len(reps) != len(scenarios) {
		t.Fatalf("got %d reports, want one per scenario (%d)", len(reps), len(scenarios))
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			r := reps[s.name]
			if r == nil || r.Error != "" || r.Tokend == nil {
				t.Fatalf("report %+v", r)
			}
			if r.Tokend.OK == 0 || len(r.Tokend.Non2xx) != 0 || r.Tokend.Errors != 0 || r.Tokend.BadAnswers != 0 {
				t.Errorf("tokend: %+v", r.Tokend)
			}
			if r.Tokend.Latency.P50 <= 0 || r.Tokend.Latency.P50 > r.Tokend.Latency.P99 || r.Tokend.Latency.P99 > r.Tokend.Latency.Max {
				t.Errorf("latencies out of order: %+v", r.Tokend.Latency)
			}
			if r.Concurrency != 4 || r.DurationS != 0.3 {
				t.Errorf("concurrency %d, duration %v", r.Concurrency, r.DurationS)
			}
			if s.ceiling == ceilArgon2 {
				if r.Argon2 == nil || r.Argon2.Hashes == 0 || r.Argon2.Ratio <= 0 || r.Ceiling != nil {
					t.Errorf("argon2 ceiling: %+v", r.Argon2)
				}
				return
			}
			if r.Ceiling == nil || r.Ceiling.OK == 0 || len(r.Ceiling.Non2xx) != 0 || r.Ceiling.Errors != 0 || r.Ceiling.BadAnswers != 0 {
				t.Fatalf("ceiling: %+v %s", r.Ceiling, r.CeilingError)
			}
			if r.Ratio == nil || r.Ratio.OKPerSec <= 0 {
				t.Errorf("ratio: %+v", r.Ratio)
			}
			if (r.Argon2 != nil) != s.userPassword {
				t.Errorf("argon2 bound reported: %v, want %v", r.Argon2 != nil, s.userPassword)
			}
		})
	}
	if n := f.reused.Load(); n != 0 {
		t.Errorf("%d refresh tokens presented after rotation; each worker must use its newest", n)
	}
	if n := f.taikiIDs.Load(); n != 1 {
		t.Errorf("%d taiki users created, want 1 (the first call's)", n)
	}
}

func TestCredentialsFromTheEnvironment(t *testing.T) {
	_, srv := newFakeTokend(t)
	t.Setenv("TOKEND_BENCH_URL", srv.URL)
	t.Setenv("TOKEND_BENCH_CLIENT_ID", fcID)
	t.Setenv("TOKEND_BENCH_CLIENT_SECRET", fcSecret)
	reps, stderr, err := runBench(t, "-scenario", "taiki", "-c", "2", "-d", "50ms", "-warmup", "0s", "-ceiling=false")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if r := reps["taiki"]; r == nil || r.Tokend.OK == 0 || r.Ceiling != nil {
		t.Fatalf("report %+v", r)
	}
}

func TestNon2xxAndTransportErrorsAreCounted(t *testing.T) {
	t.Parallel()
	f, srv := newFakeTokend(t)
	var n atomic.Int64
	f.fail = func(r *http.Request) int {
		switch n.Add(1) % 4 {
		case 1:
			return 0 // the first is setup's, which must pass
		case 2:
			return 503
		case 3:
			panic(http.ErrAbortHandler) // the connection is cut: no answer
		}
		return 429
	}
	// A POST, which the transport never retries by itself.
	reps, stderr, err := runBench(t, append(credArgs(srv.URL), "-scenario", "client_credentials", "-c", "2", "-d", "150ms", "-warmup", "0s", "-ceiling=false")...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	s := reps["client_credentials"].Tokend
	if s.Non2xx["503"] == 0 || s.Non2xx["429"] == 0 || s.Errors == 0 || s.OK == 0 {
		t.Fatalf("want 2xx, 503, 429 and transport errors counted, got %+v", s)
	}
	// A quarter each, give or take the window's edges.
	for _, got := range []int{s.OK, s.Non2xx["503"], s.Non2xx["429"], s.Errors} {
		if want := (s.Requests + s.Errors) / 4; got < want/2 || got > want*2 {
			t.Errorf("counts %+v, want about %d each", s, want)
		}
	}
	if s.Requests != s.OK+s.Non2xx["503"]+s.Non2xx["429"] {
		t.Errorf("requests %d is not the answers counted", s.Requests)
	}
	if s.FirstError == "" {
		t.Error("no transport error reported")
	}
}

func TestSetupFailuresAreReportedAndTheRestRuns(t *testing.T) {
	t.Parallel()
	f, srv := newFakeTokend(t)
	f.fail = func(r *http.Request) int {
		if strings.HasPrefix(r.URL.Path, "/system/") {
			return 404 // a dialect switched off
		}
		return 0
	}
	reps, _, err := runBench(t, append(credArgs(srv.URL), "-scenario", "ocm,jwks", "-c", "1", "-d", "30ms", "-warmup", "0s", "-ceiling=false")...)
	if !errors.Is(err, errSomeFailed) {
		t.Fatalf("err = %v, want errSomeFailed", err)
	}
	if r := reps["ocm"]; r == nil || !strings.Contains(r.Error, "status 404") || r.Tokend != nil {
		t.Errorf("ocm: %+v", r)
	}
	if r := reps["jwks"]; r == nil || r.Error != "" || r.Tokend.OK == 0 {
		t.Errorf("jwks: %+v", r)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing credentials", []string{"-scenario", "client_credentials"}, "needs -client-id, -client-secret"},
		{"unknown scenario", []string{"-scenario", "nope"}, `unknown scenario "nope"`},
		{"zero concurrency", []string{"-c", "0"}, "-c 0"},
		{"too much concurrency", []string{"-c", "100000"}, "-c 100000"},
		{"too long", []string{"-d", "1h"}, "-d 1h0m0s"},
		{"not http", []string{"-url", "ftp://x"}, "want http://"},
		{"argument", []string{"extra"}, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runBench(t, tc.args...)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(ue.msg, tc.want) {
				t.Fatalf("err = %v, want a usage error with %q", err, tc.want)
			}
		})
	}
}

func TestTextOutput(t *testing.T) {
	t.Parallel()
	_, srv := newFakeTokend(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append(credArgs(srv.URL), "-scenario", "client_credentials", "-c", "2", "-d", "50ms", "-warmup", "0s"), &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"client_credentials  POST /oauth2/token", "  tokend ", "  ceiling ", "ok/s", "p99", "non-2xx none", "of the ceiling's ok/s", "ES256"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPercentilesOfKnownLatencies(t *testing.T) {
	t.Parallel()
	var lat []time.Duration // 1ms to 100ms
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	r := &result{ok: lat, status: map[int]int{503: 7}, errors: 2, window: 2 * time.Second}
	s := r.summary()
	want := latencies{P50: 50, P90: 90, P99: 99, Max: 100}
	if s.Latency != want {
		t.Errorf("latency %+v, want %+v", s.Latency, want)
	}
	if s.OK != 100 || s.Requests != 107 || s.OKPerSec != 50 || s.PerSec != 53.5 || s.Errors != 2 || s.non2xx() != "503:7" {
		t.Errorf("summary %+v", s)
	}
	for _, tc := range []struct {
		lat  []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 99, 0},
		{[]time.Duration{7}, 50, 7},
		{[]time.Duration{7}, 99, 7},
		{[]time.Duration{1, 2}, 50, 1},
		{[]time.Duration{1, 2}, 51, 2},
		{[]time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9},
		{[]time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 10},
	} {
		if got := percentile(tc.lat, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.lat, tc.p, got, tc.want)
		}
	}
}

func TestRunStopsAtTheDuration(t *testing.T) {
	const warmup, d = 50 * time.Millisecond, 200 * time.Millisecond
	var mu sync.Mutex
	var starts []time.Time
	calls := make([]call, 8)
	for i := range calls {
		calls[i] = func(ctx context.Context) (int, error) {
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			return 200, nil
		}
	}
	t0 := time.Now()
	r := runLoad(context.Background(), loadConfig{concurrency: 8, warmup: warmup, duration: d}, calls)
	elapsed := time.Since(t0)
	until := t0.Add(warmup + d)
	if elapsed < warmup+d || elapsed > warmup+d+150*time.Millisecond {
		t.Errorf("run took %v, want about %v", elapsed, warmup+d)
	}
	for _, s := range starts {
		if s.After(until.Add(5 * time.Millisecond)) {
			t.Fatalf("a call started %v after the end", s.Sub(until))
		}
	}
	if r.window != d {
		t.Errorf("window %v, want %v", r.window, d)
	}
	// 8 workers, 10ms a call, 200ms measured: about 160 calls, not the
	// warm-up's, not the ones still running at the end.
	if n := len(r.ok); n < 80 || n > 168 {
		t.Errorf("%d calls counted, want at most 8*200/10 = 160 (+1 per worker at the edge)", n)
	}
	if len(starts) <= len(r.ok) {
		t.Errorf("warm-up calls were counted: %d made, %d counted", len(starts), len(r.ok))
	}
}

func TestCeilingServer(t *testing.T) {
	t.Parallel()
	es, rs, jwks := fakeKeys(t)
	f := &fakeTokend{es: es, rs: rs}
	sample, _ := json.Marshal(map[string]any{
		"access_token": f.sign(es, `,"client_id":"0190d6a0-0000-7000-8000-000000000002","scope":"read write"`), "token_type": "Bearer", "expires_in": 900,
		"refresh_token": "rt1_" + strings.Repeat("z", 60), "id_token": f.sign(rs, `,"authorities":["ROLE_USER"]`),
	})
	var in map[string]any
	json.Unmarshal(sample, &in)

	t.Run("token", func(t *testing.T) {
		c, err := startCeiling(ceilingSpec{Kind: ceilToken, Sample: sample})
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		var prev map[string]any
		for range 2 {
			resp, err := http.Post(c.url+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			for _, k := range []string{"access_token", "id_token"} {
				got, want := out[k].(string), in[k].(string)
				gh, _ := parseHeader(got)
				wh, _ := parseHeader(want)
				if gh == nil || gh.Alg != wh.Alg || gh.Typ != wh.Typ || len(gh.Kid) != len(wh.Kid) {
					t.Errorf("%s header %+v, want like %+v", k, gh, wh)
				}
				if d := len(got) - len(want); d < -1 || d > 1 {
					t.Errorf("%s is %d bytes, want %d", k, len(got), len(want))
				}
				if prev != nil && prev[k] == out[k] {
					t.Errorf("%s not freshly signed", k)
				}
			}
			if rt, _ := out["refresh_token"].(string); len(rt) != len(in["refresh_token"].(string)) || rt == in["refresh_token"] {
				t.Errorf("refresh_token %q: want fresh text of the same length", rt)
			}
			if out["token_type"] != "Bearer" || out["expires_in"] != 900.0 {
				t.Errorf("other fields not copied: %v", out)
			}
			prev = out
		}
	})

	t.Run("introspect", func(t *testing.T) {
		c, err := startCeiling(ceilingSpec{Kind: ceilIntrospect, Sample: sample})
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		if d := len(c.token) - len(in["access_token"].(string)); d < -1 || d > 1 {
			t.Errorf("token to introspect is %d bytes, want %d", len(c.token), len(in["access_token"].(string)))
		}
		tampered := c.token[:len(c.token)-4] + "AAAA"
		for tok, want := range map[string]bool{c.token: true, tampered: false, "garbage": false} {
			resp, err := http.PostForm(c.url+"/oauth2/introspect", url.Values{"token": {tok}})
			if err != nil {
				t.Fatal(err)
			}
			var out struct{ Active bool }
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if out.Active != want {
				t.Errorf("active = %v, want %v", out.Active, want)
			}
		}
	})

	t.Run("jwks", func(t *testing.T) {
		h := http.Header{"Content-Type": {"application/jwk-set+json"}, "Cache-Control": {"public, max-age=300"}}
		c, err := startCeiling(ceilingSpec{Kind: ceilJWKS, Sample: jwks, Header: h})
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		resp, err := http.Get(c.url + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(body, jwks) || resp.Header.Get("Content-Type") != "application/jwk-set+json" || resp.Header.Get("Cache-Control") != "public, max-age=300" {
			t.Errorf("jwks answer differs: %s %v", body, resp.Header)
		}
	})

	t.Run("no JWT in the answer", func(t *testing.T) {
		if _, err := startCeiling(ceilingSpec{Kind: ceilToken, Sample: []byte(`{"access_token":"opaque"}`)}); err == nil {
			t.Error("want an error")
		}
	})
}
