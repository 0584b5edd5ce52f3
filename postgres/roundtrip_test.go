package postgres_test

import (
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/secret"
)

// turnCounter is a TCP proxy that counts round trips: each time the client
// speaks after the server has (or first), one more request went out and
// waited for its answer.
type turnCounter struct {
	ln     net.Listener
	target string

	mu         sync.Mutex
	turns      int
	serverLast bool
}

func newTurnCounter(t *testing.T, target string) *turnCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &turnCounter{ln: ln, target: target, serverLast: true}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go p.pipe(up, c, true)
			go p.pipe(c, up, false)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *turnCounter) pipe(dst, src net.Conn, fromClient bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if fromClient && p.serverLast {
				p.turns++
			}
			p.serverLast = !fromClient
			p.mu.Unlock()
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// take returns the round trips since the last call.
func (p *turnCounter) take() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.turns
	p.turns, p.serverLast = 0, true
	return n
}

// TestRefreshIsOneRoundTrip counts what one refresh costs the engine on
// PostgreSQL: a rotation, a refresh of the previous token within the
// grace window and a refresh without rotation each take one round trip to
// the database (the store's refresh step), where they took four (session,
// user, compare-and-swap, last-refresh time).
func TestRefreshIsOneRoundTrip(t *testing.T) {
	dsn, _ := freshSchema(t)
	p := newTurnCounter(t, target(t))
	via, err := url.Parse(dsn)
	if err != nil || via.Scheme == "" {
		t.Skipf("TOKEND_TEST_POSTGRES is not a URL (%v): cannot route it through a proxy", err)
	}
	via.Host = p.ln.Addr().String()
	store := open(t, via.String())
	ctx := t.Context()
	hasher, err := secret.NewHasher(secret.Params{MemoryKiB: 1024, Time: 1, Threads: 1}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	e, err := grant.New(grant.Config{
		Issuer: "http://tokend.test", Alg: "ES256",
		AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour, RefreshGrace: time.Minute,
	}, grant.Deps{Store: store, Hasher: hasher})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hash, err := hasher.Hash("pw-of-alice")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	must(t, store.CreateUser(ctx, &tokend.User{ID: uuid.NewString(), Username: "alice", PasswordHash: hash, Roles: []string{"ROLE_USER"}, CreatedAt: now}))
	clientID := uuid.NewString()
	must(t, store.CreateClient(ctx, &tokend.ClientApp{ID: clientID, Name: "web", Public: true,
		Grants: []string{tokend.GrantPassword, tokend.GrantRefreshToken}, Mode: tokend.ModeProduction, CreatedAt: now}))
	client, err := e.AuthenticateClient(ctx, clientID, "", true)
	if err != nil {
		t.Fatal(err)
	}
	login, err := e.Password(ctx, grant.OAuth, client, "alice", "pw-of-alice", "")
	if err != nil {
		t.Fatal(err)
	}
	// The first refresh also prepares the statement on its connection.
	first, err := e.Refresh(ctx, grant.OAuth, client, login.RefreshToken, "")
	if err != nil {
		t.Fatal(err)
	}
	noRotation := *grant.OAuth
	noRotation.Rotate = false
	rt := first.RefreshToken
	for _, tc := range []struct {
		name    string
		profile *grant.Profile
		token   func() string
	}{
		{"rotation", grant.OAuth, func() string { return rt }},
		{"previous token within the grace window", grant.OAuth, func() string { return first.RefreshToken }},
		{"no rotation", &noRotation, func() string { return rt }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.take()
			issued, err := e.Refresh(ctx, tc.profile, client, tc.token(), "")
			turns := p.take()
			if err != nil {
				t.Fatal(err)
			}
			if turns != 1 {
				t.Errorf("the refresh took %d round trips to the database, want 1", turns)
			}
			if tc.profile.Rotate && tc.token() == rt {
				rt = issued.RefreshToken
			}
		})
	}
	got, err := store.UserByID(ctx, login.User.ID)
	must(t, err)
	if got.LastRefreshAt.Before(now) {
		t.Errorf("LastRefreshAt = %v: the refreshes were not recorded", got.LastRefreshAt)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
