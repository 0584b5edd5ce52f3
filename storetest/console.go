package storetest

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// The web console's state: sign-ins (by the hash of their token), setup
// links that are spent once across processes, the user filters its pages
// use, and the overview's counts.

func newConsoleSession(userID string, at time.Time) *tokend.ConsoleSession {
	return &tokend.ConsoleSession{TokenHash: randomBytes(32), UserID: userID, CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(12 * time.Hour)}
}

func testConsoleSessionRoundTrip(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	cs := newConsoleSession(newID(), now())
	must(t, s.CreateConsoleSession(ctx, cs), "create console session")
	got, err := s.ConsoleSession(ctx, cs.TokenHash)
	must(t, err, "read console session")
	wantEqual(t, "console session", got, cs)
	wantCode(t, s.CreateConsoleSession(ctx, cs), tokend.ECONFLICT, "the same token hash again")
	_, err = s.ConsoleSession(ctx, randomBytes(32))
	wantCode(t, err, tokend.ENOTFOUND, "an unknown token hash")
}

func testConsoleSessionTouchAndEnd(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	at := now()
	cs := newConsoleSession(newID(), at)
	other := newConsoleSession(cs.UserID, at)
	must(t, s.CreateConsoleSession(ctx, cs), "create console session")
	must(t, s.CreateConsoleSession(ctx, other), "create another")
	must(t, s.TouchConsoleSession(ctx, cs.TokenHash, at.Add(5*time.Minute)), "touch")
	must(t, s.TouchConsoleSession(ctx, cs.TokenHash, at.Add(time.Minute)), "touch with an older time")
	got, err := s.ConsoleSession(ctx, cs.TokenHash)
	must(t, err, "read")
	if !got.LastSeenAt.Equal(at.Add(5 * time.Minute)) {
		t.Fatalf("last seen %v, want %v (a touch never moves it back)", got.LastSeenAt, at.Add(5*time.Minute))
	}
	if g, _ := s.ConsoleSession(ctx, other.TokenHash); g == nil || !g.LastSeenAt.Equal(at) {
		t.Fatalf("touching one sign-in moved another: %+v", g)
	}
	must(t, s.TouchConsoleSession(ctx, randomBytes(32), at), "touch an unknown sign-in")
	must(t, s.EndConsoleSession(ctx, cs.TokenHash), "end")
	_, err = s.ConsoleSession(ctx, cs.TokenHash)
	wantCode(t, err, tokend.ENOTFOUND, "an ended sign-in")
	must(t, s.EndConsoleSession(ctx, cs.TokenHash), "end it again")
	if _, err := s.ConsoleSession(ctx, other.TokenHash); err != nil {
		t.Fatalf("ending one sign-in ended another: %v", err)
	}
}

func testConsoleSessionPurge(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	at := now()
	fresh := newConsoleSession(newID(), at)
	idle := newConsoleSession(newID(), at.Add(-31*time.Minute))
	idle.ExpiresAt = at.Add(time.Hour)
	old := newConsoleSession(newID(), at.Add(-13*time.Hour))
	old.LastSeenAt = at.Add(-time.Minute) // active, but past its absolute end
	for _, cs := range []*tokend.ConsoleSession{fresh, idle, old} {
		must(t, s.CreateConsoleSession(ctx, cs), "create console session")
	}
	must(t, s.PurgeConsoleSessions(ctx, at, 30*time.Minute), "purge")
	if _, err := s.ConsoleSession(ctx, fresh.TokenHash); err != nil {
		t.Fatalf("a live sign-in was purged: %v", err)
	}
	for name, cs := range map[string]*tokend.ConsoleSession{"idle": idle, "expired": old} {
		_, err := s.ConsoleSession(ctx, cs.TokenHash)
		wantCode(t, err, tokend.ENOTFOUND, "the "+name+" sign-in after a purge")
	}
}

func testSetupTokenOnce(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	at := now()
	a, b := randomBytes(32), randomBytes(32)
	must(t, s.CreateSetupToken(ctx, a, at.Add(time.Hour)), "create setup token")
	must(t, s.CreateSetupToken(ctx, b, at.Add(time.Hour)), "create another (another node)")
	_, err := s.UseSetupToken(ctx, randomBytes(32), at)
	wantCode(t, err, tokend.ENOTFOUND, "an unknown setup token")
	exp, err := s.UseSetupToken(ctx, a, at)
	must(t, err, "use setup token")
	if !exp.Equal(at.Add(time.Hour)) {
		t.Fatalf("expiry %v, want %v", exp, at.Add(time.Hour))
	}
	_, err = s.UseSetupToken(ctx, a, at)
	wantCode(t, err, tokend.ENOTFOUND, "the same setup token again")
	_, err = s.UseSetupToken(ctx, b, at)
	wantCode(t, err, tokend.ENOTFOUND, "another node's setup token once one was used")
	// Put back (the console does, when creating the administrator failed).
	must(t, s.CreateSetupToken(ctx, a, exp), "put the token back")
	_, err = s.UseSetupToken(ctx, a, at)
	must(t, err, "use the token put back")
}

func testSetupTokenExpiry(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	at := now()
	tok := randomBytes(32)
	must(t, s.CreateSetupToken(ctx, tok, at.Add(time.Hour)), "create setup token")
	_, err := s.UseSetupToken(ctx, tok, at.Add(time.Hour))
	wantCode(t, err, tokend.ENOTFOUND, "a setup token at its expiry")
	_, err = s.UseSetupToken(ctx, tok, at.Add(time.Hour-time.Second))
	must(t, err, "the expired attempt left the token as it was")
}

func testSetupTokenConcurrent(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	at := now()
	tok := randomBytes(32)
	must(t, s.CreateSetupToken(ctx, tok, at.Add(time.Hour)), "create setup token")
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for range n {
		wg.Go(func() {
			_, err := s.UseSetupToken(ctx, tok, at)
			mu.Lock()
			defer mu.Unlock()
			switch tokend.ErrorCode(err) {
			case "":
				won++
			case tokend.ENOTFOUND:
				lost++
			default:
				t.Errorf("use setup token: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 || lost != n-1 {
		t.Fatalf("%d uses succeeded and %d were refused, want 1 and %d", won, lost, n-1)
	}
}

func testFindUsersPrefixAndRole(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	var all []*tokend.User
	for _, x := range []struct{ name, roles string }{
		{"alice", "tokend.admin reader"}, {"alina", "reader"}, {"Albert", "tokend.admin"},
		{"bob", "tokend.administrator"}, {"al%", ""}, {"ål", "x.tokend.admin"},
	} {
		u := newUser(x.name, "")
		u.Roles = splitWords(x.roles)
		all = append(all, createUser(t, s, u))
	}
	byID := slices.SortedFunc(slices.Values(all), func(a, b *tokend.User) int { return cmp.Compare(a.ID, b.ID) })
	names := func(l []*tokend.User) []string {
		var out []string
		for _, u := range l {
			out = append(out, u.Username)
		}
		return out
	}
	want := func(f func(u *tokend.User) bool) []string {
		var out []*tokend.User
		for _, u := range byID {
			if f(u) {
				out = append(out, u)
			}
		}
		return names(out)
	}
	tests := []struct {
		name string
		q    tokend.UserQuery
		want []string
	}{
		{"prefix is exact in case", tokend.UserQuery{Prefix: "al"}, want(func(u *tokend.User) bool {
			return u.Username == "alice" || u.Username == "alina" || u.Username == "al%"
		})},
		{"prefix takes % literally", tokend.UserQuery{Prefix: "al%"}, want(func(u *tokend.User) bool { return u.Username == "al%" })},
		{"prefix of a multi-byte letter", tokend.UserQuery{Prefix: "å"}, want(func(u *tokend.User) bool { return u.Username == "ål" })},
		{"prefix longer than names", tokend.UserQuery{Prefix: "alice-and-more"}, nil},
		{"role is a whole role", tokend.UserQuery{Role: "tokend.admin"}, want(func(u *tokend.User) bool { return u.Username == "alice" || u.Username == "Albert" })},
		{"role and prefix", tokend.UserQuery{Role: "reader", Prefix: "ali"}, want(func(u *tokend.User) bool { return u.Username == "alice" || u.Username == "alina" })},
		{"role of no one", tokend.UserQuery{Role: "tokend"}, nil},
	}
	for _, tc := range tests {
		got, err := s.FindUsers(ctx, tc.q)
		must(t, err, tc.name)
		if g := names(got); !slices.Equal(g, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, g, tc.want)
		}
	}
}

func splitWords(s string) []string {
	var out []string
	for _, w := range bytes.Fields([]byte(s)) {
		out = append(out, string(w))
	}
	return out
}

func testStats(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	at := now()
	st, err := s.Stats(ctx, at)
	must(t, err, "stats of an empty store")
	if st != (tokend.Stats{}) {
		t.Fatalf("empty store: %+v", st)
	}
	app := createClient(t, s, newClient("app"))
	createClient(t, s, newClient("other"))
	u := createUser(t, s, newUser("alice", ""))
	createUser(t, s, newUser("bob", ""))
	createUser(t, s, newUser("e1", app.ID))
	createSession(t, s, newSession(u.ID, app.ID, at))
	revoked := createSession(t, s, newSession(u.ID, app.ID, at))
	must(t, s.RevokeSession(ctx, revoked.ID, at, "test"), "revoke")
	expired := newSession(u.ID, "", at.Add(-48*time.Hour))
	createSession(t, s, expired)
	st, err = s.Stats(ctx, at)
	must(t, err, "stats")
	if want := (tokend.Stats{Users: 2, EndUsers: 1, Clients: 2, LiveSessions: 1}); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}
