package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
	"github.com/tokend/tokend/tokendtest"
)

type feedEntry struct {
	Kind         string `json:"kind"`
	ID           string `json:"id"`
	Username     string `json:"username"`
	TokensBefore int64  `json:"tokens_before"`
	Until        int64  `json:"until"`
}

type feedAnswer struct {
	Cursor  string      `json:"cursor"`
	Reset   bool        `json:"reset"`
	Entries []feedEntry `json:"entries"`
}

// watch follows the store as `tokend serve` does, so that the feed moves.
func (e *env) watch() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Engine.Watch(ctx, 20*time.Millisecond, nil); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

// feed asks the revocation feed; query is the raw query string.
func feed(t *testing.T, srvURL, basic, query string) feedAnswer {
	t.Helper()
	a, err := tryFeed(srvURL, basic, query)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryFeed is feed for another goroutine than the test's.
func tryFeed(srvURL, basic, query string) (feedAnswer, error) {
	var a feedAnswer
	req, _ := http.NewRequest("GET", srvURL+"/oauth2/revocations?"+query, nil)
	id, sec, _ := cut(basic)
	req.SetBasicAuth(id, sec)
	resp, err := freshConns.Do(req)
	if err != nil {
		return a, fmt.Errorf("feed %s: %w", query, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		return a, fmt.Errorf("feed %s: status %d, Cache-Control %q", query, resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return a, fmt.Errorf("feed %s: %w", query, err)
	}
	if _, err := strconv.ParseInt(a.Cursor, 10, 64); err != nil {
		return a, fmt.Errorf("feed cursor %q", a.Cursor)
	}
	return a, nil
}

// async asks the feed from another goroutine.
func async(srvURL, basic, query string) <-chan feedResult {
	c := make(chan feedResult, 1)
	go func() {
		a, err := tryFeed(srvURL, basic, query)
		c <- feedResult{a, err}
	}()
	return c
}

type feedResult struct {
	feedAnswer
	err error
}

func (r feedResult) get(t *testing.T) feedAnswer {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.feedAnswer
}

// freshConns never reuses a connection: the transport retries a GET that
// fails on a reused one, which would hide a long poll cut short.
var freshConns = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func cut(basic string) (string, string, bool) {
	for i := range len(basic) {
		if basic[i] == ':' {
			return basic[:i], basic[i+1:], true
		}
	}
	return basic, "", false
}

func (e *env) feed(query string) feedAnswer {
	e.t.Helper()
	return feed(e.t.(*testing.T), e.Srv.URL, e.basic(), query)
}

// find returns the entry of kind and id, failing t if there is not exactly one.
func (a feedAnswer) find(t *testing.T, kind, id string) feedEntry {
	t.Helper()
	var out []feedEntry
	for _, en := range a.Entries {
		if en.Kind == kind && en.ID == id {
			out = append(out, en)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d %s entries for %s in %+v, want 1", len(out), kind, id, a)
	}
	return out[0]
}

func (a feedAnswer) has(kind, id string) bool {
	for _, en := range a.Entries {
		if en.Kind == kind && en.ID == id {
			return true
		}
	}
	return false
}

func TestRevocationFeed(t *testing.T) {
	e := newEnv(t)
	e.watch()
	ctx := t.Context()
	start := e.feed("")
	if !start.Reset || len(start.Entries) != 0 {
		t.Fatalf("first answer %+v, want an empty reset", start)
	}

	login := e.login()
	at, rt := login.Str(t, "access_token"), login.Str(t, "refresh_token")
	claims, _ := e.verifyWithJWKS(at)
	jti, sid := claims["jti"].(string), claims["sid"].(string)
	if r := e.post("/oauth2/revoke", vals("token", at, "client_id", e.publicID), ""); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	a := e.feed("after=" + start.Cursor + "&wait=10s")
	if a.Reset {
		t.Fatalf("resumed answer is a reset: %+v", a)
	}
	if en := a.find(t, "token", jti); en.Until != int64(claims["exp"].(float64)) || en.TokensBefore != 0 || en.Username != "" {
		t.Errorf("token entry %+v, want until = exp %v", en, claims["exp"])
	}
	cursor := a.Cursor

	t.Run("long poll wakes on a revocation", func(t *testing.T) {
		got := async(e.Srv.URL, e.basic(), "after="+cursor+"&wait=30s")
		revokedAt := e.Clock.Now()
		if r := e.post("/oauth2/revoke", vals("token", rt, "client_id", e.publicID), ""); r.Status != 200 {
			t.Errorf("revoke refresh token: %d %s", r.Status, r.Body)
		}
		a := (<-got).get(t) // with nothing new it would come after 30s, empty
		en := a.find(t, "session", sid)
		if want := revokedAt.Add(15 * time.Minute).Unix(); en.Until < want || en.Until > want+1 {
			t.Errorf("session entry until %d, want revocation + 15m (%d)", en.Until, want)
		}
		if a.has("token", jti) {
			t.Errorf("entry before the cursor sent again: %+v", a)
		}
		cursor = a.Cursor
	})

	t.Run("disabled user and client", func(t *testing.T) {
		bobID := e.AddUser("bob", "bob's password")
		r := e.post("/oauth2/token", vals("grant_type", "password", "username", "bob", "password", "bob's password", "client_id", e.publicID), "")
		bobClaims, _ := e.verifyWithJWKS(r.Str(t, "access_token"))
		otherID, _ := e.addClient(false, tokend.GrantClientCredentials)
		disabledAt := e.Clock.Now()
		if err := e.Store.DisableUser(ctx, bobID, disabledAt); err != nil {
			t.Fatal(err)
		}
		if err := e.Store.DisableClient(ctx, otherID); err != nil {
			t.Fatal(err)
		}
		var a feedAnswer
		for c := cursor; !a.has("client", otherID); c = a.Cursor {
			a = e.feed("after=" + c + "&wait=10s")
			if !a.has("user", bobID) && !a.has("client", otherID) && len(a.Entries) != 0 {
				t.Fatalf("unexpected entries %+v", a)
			}
		}
		full := e.feed("")
		u := full.find(t, "user", bobID)
		if u.Username != "bob" || u.TokensBefore <= int64(bobClaims["iat"].(float64)) || u.TokensBefore > disabledAt.Add(7*time.Second).Unix() {
			t.Errorf("user entry %+v: want username bob, tokens_before just after the disable (%d)", u, disabledAt.Unix())
		}
		if u.Until != u.TokensBefore+int64((15*time.Minute).Seconds()) {
			t.Errorf("user entry until %d, want tokens_before + 15m", u.Until)
		}
		full.find(t, "session", bobClaims["sid"].(string))
		if c := full.find(t, "client", otherID); c.TokensBefore == 0 || c.Username != "" {
			t.Errorf("client entry %+v", c)
		}
		if full.has("user", e.aliceID) || full.has("client", e.clientID) {
			t.Errorf("enabled user or client in the feed: %+v", full)
		}
		full.find(t, "token", jti)
		full.find(t, "session", sid)
		cursor = full.Cursor
	})

	t.Run("wait ends with nothing new", func(t *testing.T) {
		a := e.feed("after=" + cursor + "&wait=1s")
		if a.Reset || len(a.Entries) != 0 || a.Cursor != cursor {
			t.Fatalf("%+v, want no entries at cursor %s", a, cursor)
		}
	})

	t.Run("cursors it cannot resume from get the full set", func(t *testing.T) {
		future := e.feed("after=999999999&wait=0s")
		if !future.Reset || future.Cursor != cursor || !future.has("token", jti) {
			t.Errorf("cursor from the future: %+v", future)
		}
	})

	t.Run("entries leave once no token they match can be live", func(t *testing.T) {
		e.Clock.Advance(16 * time.Minute)
		time.Sleep(100 * time.Millisecond) // a few syncs
		if full := e.feed(""); len(full.Entries) != 0 {
			t.Errorf("entries past their until: %+v", full)
		}
		if a := e.feed("after=" + start.Cursor); len(a.Entries) != 0 {
			t.Errorf("entries past their until: %+v", a)
		}
	})
}

func TestRevocationFeedErrors(t *testing.T) {
	e := newEnv(t)
	e.watch()
	for _, tc := range []struct {
		name, query, basic string
		status             int
		code               string
	}{
		{"no client", "", "", 401, "invalid_client"},
		{"wrong secret", "", e.clientID + ":wrong", 401, "invalid_client"},
		{"public client", "", e.publicID + ":", 401, "invalid_client"},
		{"after not a number", "after=abc", e.basic(), 400, "invalid_request"},
		{"after negative", "after=-1", e.basic(), 400, "invalid_request"},
		{"after twice", "after=1&after=2", e.basic(), 400, "invalid_request"},
		{"wait too long", "after=1&wait=2m", e.basic(), 400, "invalid_request"},
		{"wait too long in seconds", "after=1&wait=61", e.basic(), 400, "invalid_request"},
		{"wait negative", "after=1&wait=-1s", e.basic(), 400, "invalid_request"},
		{"wait garbage", "after=1&wait=soon", e.basic(), 400, "invalid_request"},
		{"unknown parameter", "since=1", e.basic(), 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", "/oauth2/revocations?"+tc.query, "", "", tc.basic)
			wantOAuthError(t, r, tc.status, tc.code)
			if tc.status == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("wait in seconds", func(t *testing.T) {
		a := e.feed("after=0&wait=1")
		if !a.Reset && len(a.Entries) != 0 {
			t.Errorf("%+v", a)
		}
	})
	t.Run("method", func(t *testing.T) {
		r := e.do("POST", "/oauth2/revocations", form, "", e.basic())
		wantOAuthError(t, r, 405, "invalid_request")
		if r.Header.Get("Allow") != "GET" {
			t.Errorf("Allow %q", r.Header.Get("Allow"))
		}
	})
}

// A long poll outlives the server's read and write timeouts, and the
// shutdown (CloseFeed) answers it at once.
func TestRevocationFeedLongPollTimeouts(t *testing.T) {
	e := newEnv(t)
	e.watch()
	srv := httptest.NewUnstartedServer(e.Handler)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	cursor := feed(t, srv.URL, e.basic(), "").Cursor

	got := async(srv.URL, e.basic(), "after="+cursor+"&wait=20s")
	time.Sleep(1500 * time.Millisecond) // past both timeouts
	at := e.login().Str(t, "access_token")
	claims, _ := e.verifyWithJWKS(at)
	if r := e.post("/oauth2/revoke", vals("token", at, "client_id", e.publicID), ""); r.Status != 200 {
		t.Fatalf("revoke: %d", r.Status)
	}
	a := (<-got).get(t)
	a.find(t, "token", claims["jti"].(string))

	got = async(srv.URL, e.basic(), "after="+a.Cursor+"&wait=60s")
	time.Sleep(200 * time.Millisecond)
	e.Engine.CloseFeed()
	if a := (<-got).get(t); len(a.Entries) != 0 || a.Reset {
		t.Errorf("answer at shutdown %+v, want nothing new", a)
	}
}

// Two nodes on one store serve the same feed: a cursor of one resumes on
// the other, and both list the same entries.
func TestRevocationFeedSameOnEveryNode(t *testing.T) {
	a := newEnv(t)
	a.watch()
	onA := a.feed("")
	a.addClient(false, tokend.GrantClientCredentials) // a change: b, started now, loads later than a
	// Node b: another engine and server on a's database file.
	store, err := sqlite.Open(t.Context(), a.DBFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	hasher, _ := secret.NewHasher(tokendtest.Cheap, 0, 8)
	engine, err := grant.New(grant.Config{Issuer: tokendtest.Issuer, Alg: "ES256", AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour},
		grant.Deps{Store: store, Hasher: hasher, Now: a.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { engine.Watch(ctx, 20*time.Millisecond, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	b := httptest.NewServer((&httpapi.Server{Engine: engine, Store: store, Metrics: metrics.New(), Log: a.Log}).Handler())
	t.Cleanup(b.Close)

	onB := feed(t, b.URL, a.basic(), "")
	if seq(t, onB.Cursor) <= seq(t, onA.Cursor) {
		t.Fatalf("b loaded at %s, not after a (%s)", onB.Cursor, onA.Cursor)
	}
	var jtis []string
	for i := range 3 {
		at := a.login().Str(t, "access_token")
		claims, _ := a.verifyWithJWKS(at)
		jtis = append(jtis, claims["jti"].(string))
		if r := a.post("/oauth2/revoke", vals("token", at, "client_id", a.publicID), ""); r.Status != 200 {
			t.Fatalf("revoke %d: %d", i, r.Status)
		}
	}
	// Node b started after a loaded, so a's first cursor is older than
	// b's start: a reset there. Its own cursor resumes.
	fromB := feed(t, b.URL, a.basic(), "after="+onB.Cursor+"&wait=10s")
	for len(fromB.Entries) < 3 {
		next := feed(t, b.URL, a.basic(), "after="+fromB.Cursor+"&wait=10s")
		fromB.Entries, fromB.Cursor = append(fromB.Entries, next.Entries...), next.Cursor
	}
	fromA := a.feed("after=" + onB.Cursor + "&wait=10s") // b's cursor, on a
	for len(fromA.Entries) < 3 {
		next := a.feed("after=" + fromA.Cursor + "&wait=10s")
		fromA.Entries, fromA.Cursor = append(fromA.Entries, next.Entries...), next.Cursor
	}
	if fromA.Reset || fromB.Reset {
		t.Fatalf("resumed answers are resets: a %+v b %+v", fromA, fromB)
	}
	if fmt.Sprint(fromA.Entries) != fmt.Sprint(fromB.Entries) || fromA.Cursor != fromB.Cursor {
		t.Errorf("nodes differ:\n a %+v\n b %+v", fromA, fromB)
	}
	for _, j := range jtis {
		fromA.find(t, "token", j)
	}
	// A cursor from before b loaded gets the full set on b, not on a.
	if old := feed(t, b.URL, a.basic(), "after="+onA.Cursor); !old.Reset || len(old.Entries) != 3 {
		t.Errorf("cursor from before b loaded, on b: %+v, want a reset with 3 entries", old)
	}
	if old := a.feed("after=" + onA.Cursor); old.Reset || len(old.Entries) != 3 {
		t.Errorf("cursor from before b loaded, on a: %+v, want the 3 entries since", old)
	}
}

func seq(t *testing.T, cursor string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(cursor, 10, 64)
	if err != nil {
		t.Fatalf("cursor %q", cursor)
	}
	return n
}

// A node that could not follow the change log for most of a day (which
// Watch purges after a day) loads the full set again: cursors from before
// get it too, flagged reset.
func TestRevocationFeedReloadsAfterGap(t *testing.T) {
	e := newEnv(t)
	e.watch()
	before := e.feed("")
	e.addClient(false, tokend.GrantClientCredentials)
	if a := e.feed("after=" + before.Cursor); a.Reset {
		t.Fatalf("before the gap: %+v", a)
	}
	e.Clock.Advance(21 * time.Hour)
	for range 100 {
		if a := e.feed("after=" + before.Cursor); a.Reset {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the feed did not reload after the gap")
}
