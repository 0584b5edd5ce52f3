package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxAnswerBytes caps how much of an answer is read; tokend's are far
// smaller, and a body past this is an error.
const maxAnswerBytes = 1 << 20

// target is one HTTP server under load, reached through one transport
// whose keep-alive pool holds exactly one connection per worker.
type target struct {
	base   string
	client *http.Client
	tr     *http.Transport
}

func newTarget(base string, concurrency int, timeout time.Duration) *target {
	tr := &http.Transport{
		// Only the given URL: no proxy from the environment, no redirects
		// (below), no HTTP/2 (an empty TLSNextProto keeps HTTP/1.1 on TLS).
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSHandshakeTimeout:   5 * time.Second,
		MaxIdleConns:          concurrency,
		MaxIdleConnsPerHost:   concurrency,
		MaxConnsPerHost:       concurrency,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: timeout,
	}
	return &target{
		base: base,
		tr:   tr,
		client: &http.Client{
			Transport:     tr,
			Timeout:       timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func (t *target) close() { t.tr.CloseIdleConnections() }

// request is one request, ready to send as many times as needed.
type request struct {
	method, path string
	body         []byte
	contentType  string
	auth         string // the Authorization header, if any
}

// answer is what came back.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// send sends r and reads the whole answer into buf (reused by its worker),
// so that the connection goes back to the pool.
func (t *target) send(ctx context.Context, r *request, buf *bytes.Buffer) (answer, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, t.base+r.path, body)
	if err != nil {
		return answer{}, err
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return answer{}, fmt.Errorf("read answer: %w", err)
	}
	if n > maxAnswerBytes {
		return answer{}, fmt.Errorf("answer larger than %d bytes", maxAnswerBytes)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}, nil
}

// A call makes one request and reads its whole answer. It returns the HTTP
// status and nil, or 0 and the transport error when no answer came, or a
// 2xx status and an error when the answer was not what the scenario
// expects (no token in it, say).
type call func(ctx context.Context) (status int, err error)

type loadConfig struct {
	concurrency      int
	warmup, duration time.Duration
}

// workerStats is what one worker saw; merged at the end, so the hot loop
// takes no lock.
type workerStats struct {
	ok       []time.Duration // latencies of 2xx answers
	status   map[int]int     // non-2xx answers by status
	errors   int             // transport errors
	bad      int             // 2xx answers the scenario could not use
	errFirst string
}

// runLoad runs one worker per call for warm-up + duration. Every call that
// completes inside the measured window counts, whenever it started (as wrk
// does). No call starts after the end; a call still in flight then is left
// to finish (within the request timeout, so that the server does not see
// a wave of cancelled requests) and is not counted.
func runLoad(ctx context.Context, cfg loadConfig, calls []call) *result {
	start := time.Now()
	from := start.Add(cfg.warmup)
	until := from.Add(cfg.duration)

	stats := make([]workerStats, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { stats[i].loop(ctx, c, from, until) })
	}
	wg.Wait()

	end := time.Now()
	if end.After(until) {
		end = until
	}
	res := &result{status: map[int]int{}, window: max(end.Sub(from), 0)}
	for i := range stats {
		w := &stats[i]
		res.ok = append(res.ok, w.ok...)
		for s, n := range w.status {
			res.status[s] += n
		}
		res.errors += w.errors
		res.bad += w.bad
		if res.errFirst == "" {
			res.errFirst = w.errFirst
		}
	}
	slices.Sort(res.ok)
	return res
}

func (w *workerStats) loop(ctx context.Context, c call, from, until time.Time) {
	w.status = map[int]int{}
	w.ok = make([]time.Duration, 0, 1024)
	for ctx.Err() == nil && time.Now().Before(until) {
		t0 := time.Now()
		status, err := c(ctx)
		t1 := time.Now()
		if t1.Before(from) || t1.After(until) || (ctx.Err() != nil && errors.Is(err, ctx.Err())) {
			continue // warm-up, after the end, or interrupted
		}
		switch {
		case status == 0:
			w.errors++
			if w.errFirst == "" && err != nil {
				w.errFirst = err.Error()
			}
		case status < 200 || status > 299:
			w.status[status]++
		case err != nil:
			w.bad++
			if w.errFirst == "" {
				w.errFirst = err.Error()
			}
		default:
			w.ok = append(w.ok, t1.Sub(t0))
		}
	}
}

// result is one run's measurements.
type result struct {
	ok       []time.Duration // sorted
	status   map[int]int
	errors   int
	bad      int
	errFirst string
	window   time.Duration
}

// percentile is the nearest-rank percentile of the sorted latencies: the
// smallest latency that at least p percent of them do not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// summary is a result as reported.
type summary struct {
	Requests    int            `json:"requests"`
	OK          int            `json:"ok"`
	PerSec      float64        `json:"requests_per_sec"`
	OKPerSec    float64        `json:"ok_per_sec"`
	Latency     latencies      `json:"latency_ms"`
	Non2xx      map[string]int `json:"non_2xx"`
	Errors      int            `json:"transport_errors"`
	BadAnswers  int            `json:"bad_answers"`
	FirstError  string         `json:"first_error,omitempty"`
	WindowSecs  float64        `json:"window_s"`
	nonOKStatus []int
}

// latencies are percentiles of the 2xx answers, in milliseconds.
type latencies struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r *result) summary() *summary {
	s := &summary{OK: len(r.ok), Non2xx: map[string]int{}, Errors: r.errors, BadAnswers: r.bad, FirstError: r.errFirst, WindowSecs: r.window.Seconds()}
	s.Requests = s.OK + r.bad
	for st, n := range r.status {
		s.Requests += n
		s.Non2xx[fmt.Sprint(st)] = n
		s.nonOKStatus = append(s.nonOKStatus, st)
	}
	slices.Sort(s.nonOKStatus)
	if secs := r.window.Seconds(); secs > 0 {
		s.PerSec = float64(s.Requests) / secs
		s.OKPerSec = float64(s.OK) / secs
	}
	if len(r.ok) > 0 {
		s.Latency = latencies{
			P50: ms(percentile(r.ok, 50)), P90: ms(percentile(r.ok, 90)),
			P99: ms(percentile(r.ok, 99)), Max: ms(r.ok[len(r.ok)-1]),
		}
	}
	return s
}

// non2xx renders the non-2xx counts as "503:120 429:3", or "none".
func (s *summary) non2xx() string {
	if len(s.nonOKStatus) == 0 {
		return "none"
	}
	var parts []string
	for _, st := range s.nonOKStatus {
		parts = append(parts, fmt.Sprintf("%d:%d", st, s.Non2xx[fmt.Sprint(st)]))
	}
	return strings.Join(parts, " ")
}
