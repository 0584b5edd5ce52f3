package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// What closes the hole of offline verification: tokend's revocation feed
// (GET /oauth2/revocations) lists the tokens, sessions, users and clients
// revoked since a cursor; the verifier follows it with long polls, keeps
// the set in memory until no token an entry matches can still be live,
// and refuses matching tokens with ErrRevoked.

// maxFeedBytes bounds one answer of the feed (a full set can be large).
const maxFeedBytes = 64 << 20

// feedAnswer is one answer of the feed, as tokend sends it.
type feedAnswer struct {
	Cursor  string      `json:"cursor"`
	Reset   bool        `json:"reset"`
	Entries []feedEntry `json:"entries"`
}

type feedEntry struct {
	Kind         string `json:"kind"`
	ID           string `json:"id"`
	Username     string `json:"username"`
	TokensBefore int64  `json:"tokens_before"`
	Until        int64  `json:"until"`
}

// refusal refuses a user's or client's tokens issued before before; it
// may be forgotten after until.
type refusal struct{ before, until int64 }

// revocations is the set the feed builds.
type revocations struct {
	mu        sync.RWMutex
	tokens    map[string]int64 // jti -> until
	sessions  map[string]int64 // sid -> until
	users     map[string]refusal
	usernames map[string]refusal
	clients   map[string]refusal
	pruned    time.Time
}

func newRevocations() *revocations {
	r := &revocations{}
	r.reset()
	return r
}

func (r *revocations) reset() {
	r.tokens, r.sessions = map[string]int64{}, map[string]int64{}
	r.users, r.usernames, r.clients = map[string]refusal{}, map[string]refusal{}, map[string]refusal{}
}

// check refuses c if an entry matches it.
func (r *revocations) check(c *Claims) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, ok := r.tokens[c.ID]; ok {
		return fmt.Errorf("%w: the token was revoked", ErrRevoked)
	}
	if _, ok := r.sessions[c.SessionID]; ok && c.SessionID != "" {
		return fmt.Errorf("%w: its session was revoked", ErrRevoked)
	}
	// A token without iat counts as issued at the epoch: any refusal of
	// its user or client covers it.
	var iat int64
	if !c.IssuedAt.IsZero() {
		iat = c.IssuedAt.Unix()
	}
	for _, id := range c.refs.users {
		if f, ok := r.users[id]; ok && iat < f.before {
			return fmt.Errorf("%w: its user was disabled or its tokens ended", ErrRevoked)
		}
	}
	if c.refs.username != "" {
		if f, ok := r.usernames[c.refs.username]; ok && iat < f.before {
			return fmt.Errorf("%w: its user was disabled or its tokens ended", ErrRevoked)
		}
	}
	for _, id := range c.refs.clients {
		if f, ok := r.clients[id]; ok && iat < f.before {
			return fmt.Errorf("%w: its client was disabled", ErrRevoked)
		}
	}
	return nil
}

// apply adds an answer's entries (replacing the set first when it is a
// reset), each merged with what is held by keeping the later times, so
// that an entry seen twice changes nothing. Entries past their until (and
// leeway) are dropped now and then.
func (r *revocations) apply(a *feedAnswer, now time.Time, leeway time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.Reset {
		r.reset()
	}
	later := func(m map[string]int64, k string, until int64) {
		if until > m[k] {
			m[k] = until
		}
	}
	refuse := func(m map[string]refusal, k string, f refusal) {
		old := m[k]
		m[k] = refusal{before: max(old.before, f.before), until: max(old.until, f.until)}
	}
	for _, en := range a.Entries {
		if en.ID == "" {
			continue
		}
		switch en.Kind {
		case "token":
			later(r.tokens, en.ID, en.Until)
		case "session":
			later(r.sessions, en.ID, en.Until)
		case "user":
			f := refusal{before: en.TokensBefore, until: en.Until}
			refuse(r.users, en.ID, f)
			if en.Username != "" {
				refuse(r.usernames, en.Username, f)
			}
		case "client":
			refuse(r.clients, en.ID, refusal{before: en.TokensBefore, until: en.Until})
		}
	}
	if now.Sub(r.pruned) >= time.Minute || a.Reset {
		r.pruned = now
		cutoff := now.Add(-leeway).Unix()
		for _, m := range []map[string]int64{r.tokens, r.sessions} {
			for k, until := range m {
				if until <= cutoff {
					delete(m, k)
				}
			}
		}
		for _, m := range []map[string]refusal{r.users, r.usernames, r.clients} {
			for k, f := range m {
				if f.until <= cutoff {
					delete(m, k)
				}
			}
		}
	}
}

// size is how many entries are held.
func (r *revocations) size() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.tokens) + len(r.sessions) + len(r.users) + len(r.usernames) + len(r.clients)
}

// feedClient follows the feed.
type feedClient struct {
	client     *http.Client
	url        string
	id, secret string
	wait       time.Duration
	log        *slog.Logger
	into       *revocations
	leeway     time.Duration
	now        func() time.Time

	mu      sync.Mutex
	cursor  string
	contact time.Time // the last answer
}

// load reads the full set.
func (f *feedClient) load(ctx context.Context) error {
	a, err := f.poll(ctx, "", 0)
	if err != nil {
		return fmt.Errorf("verify: read the revocation feed: %w", err)
	}
	f.took(a)
	return nil
}

func (f *feedClient) took(a *feedAnswer) {
	f.into.apply(a, f.now(), f.leeway)
	f.mu.Lock()
	f.cursor, f.contact = a.Cursor, time.Now()
	f.mu.Unlock()
}

// run follows the feed until ctx ends: one long poll after another from
// the last cursor, so that a reconnection resumes where it stopped (the
// feed answers with the full set when it cannot), with a growing delay
// after failures.
func (f *feedClient) run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		f.mu.Lock()
		cursor := f.cursor
		f.mu.Unlock()
		start := time.Now()
		a, err := f.poll(ctx, cursor, f.wait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if failures == 1 {
				f.log.Warn("revocation feed unreachable; retrying", "url", f.url, "err", err)
			}
			sleep(ctx, backoff(failures, 30*time.Second))
			continue
		}
		if failures > 0 {
			f.log.Info("revocation feed reachable again", "url", f.url, "failures", failures)
			failures = 0
		}
		f.took(a)
		// An answer with nothing, long before the wait was up, comes from
		// a server that did not hold the request: do not spin.
		if len(a.Entries) == 0 && !a.Reset && time.Since(start) < f.wait/2 {
			sleep(ctx, time.Second)
		}
	}
}

// poll asks the feed once; cursor "" asks for the full set.
func (f *feedClient) poll(ctx context.Context, cursor string, wait time.Duration) (*feedAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+fetchTimeout)
	defer cancel()
	q := url.Values{}
	if cursor != "" {
		q.Set("after", cursor)
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	u := f.url
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	// RFC 6749 §2.3.1: both parts form-encoded.
	req.SetBasicAuth(url.QueryEscape(f.id), url.QueryEscape(f.secret))
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
		return nil, fmt.Errorf("GET %s: status %d %s", f.url, resp.StatusCode, e.Error)
	}
	var a feedAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxFeedBytes)).Decode(&a); err != nil {
		return nil, fmt.Errorf("GET %s: %w", f.url, err)
	}
	if a.Cursor == "" {
		return nil, fmt.Errorf("GET %s: an answer without a cursor", f.url)
	}
	return &a, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
