package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend/verify"
)

type feedAnswer struct {
	Cursor  string `json:"cursor"`
	Reset   bool   `json:"reset"`
	Entries []struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"entries"`
}

func (a feedAnswer) has(kind, id string) bool {
	for _, en := range a.Entries {
		if en.Kind == kind && en.ID == id {
			return true
		}
	}
	return false
}

// feed asks node s's revocation feed as client id:secret.
func (s *server) feed(query, id, secret string) (feedAnswer, error) {
	var a feedAnswer
	req, _ := http.NewRequest("GET", "http://"+s.addr+"/oauth2/revocations?"+query, nil)
	req.SetBasicAuth(id, secret)
	// A connection of its own: the transport would retry a GET cut short
	// on a reused one, and hide it.
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return a, fmt.Errorf("feed: status %d", resp.StatusCode)
	}
	return a, json.NewDecoder(resp.Body).Decode(&a)
}

func (s *server) mustFeed(t *testing.T, query string, f nodeFixture) feedAnswer {
	t.Helper()
	a, err := s.feed(query, f.clientID, f.clientSecret)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The binary serves the feed: a user disabled with the CLI (another
// process) reaches a waiting long poll, and SIGTERM answers a long poll
// at once instead of holding the shutdown.
func TestFeedOfTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	s := startServer(t, t.TempDir(), "--shutdown-timeout", "5s")
	f := provision(t, s)
	var alice struct {
		ID string `json:"id"`
	}
	var users []struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	}
	json.Unmarshal([]byte(s.cli(t, "", "user", "list", "--json")), &users)
	for _, u := range users {
		if u.Username == "alice" {
			alice.ID = u.ID
		}
	}
	start := s.mustFeed(t, "", f)

	type result struct {
		a   feedAnswer
		err error
	}
	got := make(chan result, 1)
	go func() {
		a, err := s.feed("after="+start.Cursor+"&wait=30s", f.clientID, f.clientSecret)
		got <- result{a, err}
	}()
	time.Sleep(200 * time.Millisecond)
	s.cli(t, "", "user", "disable", "alice")
	r := <-got
	if r.err != nil || !r.a.has("user", alice.ID) {
		t.Fatalf("long poll after the CLI disabled alice: %+v %v", r.a, r.err)
	}

	go func() {
		a, err := s.feed("after="+r.a.Cursor+"&wait=60s", f.clientID, f.clientSecret)
		got <- result{a, err}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.err != nil || len(r.a.Entries) != 0 {
		t.Errorf("long poll at shutdown: %+v %v, want an empty answer", r.a, r.err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, s.Logs())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tokend did not exit after SIGTERM")
	}
}

// Two nodes on one PostgreSQL database serve the same feed: a cursor of
// one resumes on the other; a verifier following one node refuses a token
// revoked at the other.
func TestMultiNodeFeed(t *testing.T) {
	dsn := pgDSN(t)
	a := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn)
	b := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn)
	f := provision(t, a)
	onA, onB := a.mustFeed(t, "", f), b.mustFeed(t, "", f)

	// The verifier reaches the cluster's issuer URL at node a.
	dial := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial.DialContext(ctx, network, a.addr)
	}}}
	v, err := verify.New(t.Context(), clusterIssuer, verify.Options{
		Audience: clusterIssuer, Algorithms: []string{"ES256"}, ClientID: f.clientID, ClientSecret: f.clientSecret, HTTPClient: client,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	tok := b.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, f.clientSecret).str("access_token")
	c, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if r := b.post("/oauth2/revoke", url.Values{"token": {tok}}, f.clientID, f.clientSecret); r.status != 200 {
		t.Fatalf("revoke at b: %d", r.status)
	}
	eventually(t, "the verifier following a refuses the token revoked at b", 10*time.Second, func() bool {
		_, err := v.Verify(t.Context(), tok)
		return errors.Is(err, verify.ErrRevoked)
	})

	var fromA, fromB feedAnswer
	eventually(t, "both nodes list the revocation", 10*time.Second, func() bool {
		fromA, fromB = a.mustFeed(t, "after="+onB.Cursor, f), b.mustFeed(t, "after="+onA.Cursor, f)
		return fromA.has("token", c.ID) && fromB.has("token", c.ID)
	})
	if fromA.Reset || fromB.Reset || fromA.Cursor != fromB.Cursor {
		t.Errorf("the nodes' feeds differ: a %+v, b %+v", fromA, fromB)
	}
}
