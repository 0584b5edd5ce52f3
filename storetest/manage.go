package storetest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

// The management methods: versions and their compare-and-swap, deletions
// and their cascades, pages of lists.

// wantChanges fails t unless the changes recorded after seq are want, in
// any order; it returns the latest seq.
func wantChanges(t *testing.T, s tokend.Store, after int64, what string, want ...tokend.Change) int64 {
	t.Helper()
	got, latest := changesAfter(t, s, after)
	for i := range got {
		got[i].Seq = 0
	}
	by := func(a, b tokend.Change) int { return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Ref, b.Ref)) }
	slices.SortFunc(got, by)
	slices.SortFunc(want, by)
	if !slices.Equal(got, want) {
		t.Errorf("%s recorded changes %v, want %v", what, got, want)
	}
	return latest
}

func userChange(id string) tokend.Change   { return tokend.Change{Kind: tokend.ChangeUser, Ref: id} }
func clientChange(id string) tokend.Change { return tokend.Change{Kind: tokend.ChangeClient, Ref: id} }
func sessionChange(id string) tokend.Change {
	return tokend.Change{Kind: tokend.ChangeSession, Ref: id}
}

func testVersions(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	u := createUser(t, s, newUser("alice", ""))
	c := createClient(t, s, newClient("shop"))
	if u.Version != 1 || c.Version != 1 {
		t.Fatalf("CreateUser and CreateClient set versions %d and %d, want 1", u.Version, c.Version)
	}
	version := func() int64 { return getUser(t, s, u.ID).Version }
	if v := version(); v != 1 {
		t.Fatalf("stored version %d, want 1", v)
	}
	// Every write to the user moves its version, so that an entity tag
	// changes whenever the object does.
	for i, step := range []struct {
		name string
		do   func() error
	}{
		{"SetUserPassword", func() error { return s.SetUserPassword(ctx, u.ID, "h") }},
		{"TouchLogin", func() error { return s.TouchLogin(ctx, u.ID, now()) }},
		{"TouchRefresh", func() error { return s.TouchRefresh(ctx, u.ID, now()) }},
		{"DisableUser", func() error { return s.DisableUser(ctx, u.ID, now()) }},
	} {
		must(t, step.do(), step.name)
		if v := version(); v != int64(i+2) {
			t.Errorf("after %s the version is %d, want %d", step.name, v, i+2)
		}
	}
	cv := func() int64 { return getClient(t, s, c.ID).Version }
	must(t, s.SetClientSecret(ctx, c.ID, randomBytes(32), time.Time{}), "set client secret")
	if v := cv(); v != 2 {
		t.Errorf("after SetClientSecret the client's version is %d, want 2", v)
	}
	must(t, s.DisableClient(ctx, c.ID), "disable client")
	if v := cv(); v != 3 {
		t.Errorf("after DisableClient the client's version is %d, want 3", v)
	}
	other := createUser(t, s, newUser("bob", ""))
	if v := getUser(t, s, other.ID).Version; v != 1 {
		t.Errorf("another user's version is %d, want 1", v)
	}
}

func testUpdateUser(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	c := createClient(t, s, newClient("shop"))
	alice := createUser(t, s, newUser("alice", ""))
	createUser(t, s, newUser("bob", ""))
	createUser(t, s, newUser("carol", c.ID))
	start := now().Add(-time.Hour)
	live := createSession(t, s, newSession(alice.ID, c.ID, start))
	last := latestSeq(t, s)

	changed := *alice
	changed.Username, changed.Roles, changed.Claims = "alicia", []string{"tokend.admin"}, map[string]any{"dept": "ops"}
	changed.PasswordHash = "not written" // UpdateUser leaves the password alone
	must(t, s.UpdateUser(ctx, &changed, 1, now()), "update user")
	if changed.Version != 2 {
		t.Errorf("UpdateUser set Version %d, want 2", changed.Version)
	}
	want := *alice
	want.Username, want.Roles, want.Claims = "alicia", []string{"tokend.admin"}, map[string]any{"dept": "ops"}
	got := getUser(t, s, alice.ID)
	wantEqual(t, "updated user", got, &want)
	if got.Version != 2 {
		t.Errorf("stored version %d, want 2", got.Version)
	}
	last = wantChanges(t, s, last, "UpdateUser", userChange(alice.ID))
	if se := getSession(t, s, live.ID); !se.RevokedAt.IsZero() {
		t.Error("an update that does not disable the user revoked its session")
	}

	t.Run("stale version", func(t *testing.T) {
		stale := *got
		stale.Username = "stale"
		wantCode(t, s.UpdateUser(ctx, &stale, 1, now()), tokend.EPRECONDITION, "update at an old version")
		wantEqual(t, "user after a stale update", getUser(t, s, alice.ID), &want)
		last = wantChanges(t, s, last, "stale UpdateUser")
	})
	t.Run("unknown user", func(t *testing.T) {
		ghost := newUser("ghost", "")
		wantCode(t, s.UpdateUser(ctx, ghost, 1, now()), tokend.ENOTFOUND, "update an unknown user")
	})
	t.Run("username taken", func(t *testing.T) {
		dup := *got
		dup.Username = "bob"
		wantCode(t, s.UpdateUser(ctx, &dup, got.Version, now()), tokend.ECONFLICT, "rename to a taken username")
		// A name taken among one client's end users is free among the users of none.
		dup.Username = "carol"
		must(t, s.UpdateUser(ctx, &dup, got.Version, now()), "rename to a client user's name")
		got = getUser(t, s, alice.ID)
		last = wantChanges(t, s, last, "rename", userChange(alice.ID))
	})
	t.Run("disable revokes sessions", func(t *testing.T) {
		at := now()
		off := *got
		off.Disabled = true
		must(t, s.UpdateUser(ctx, &off, got.Version, at), "disable with UpdateUser")
		se := getSession(t, s, live.ID)
		if !se.RevokedAt.Equal(at) || se.RevokeReason == "" {
			t.Errorf("session after disable: revoked at %v (%q), want %v", se.RevokedAt, se.RevokeReason, at)
		}
		last = wantChanges(t, s, last, "disable", userChange(alice.ID), sessionChange(live.ID))
		on := *getUser(t, s, alice.ID)
		on.Disabled = false
		must(t, s.UpdateUser(ctx, &on, on.Version, now()), "enable with UpdateUser")
		if getUser(t, s, alice.ID).Disabled {
			t.Error("the user is still disabled")
		}
	})
}

// testUpdateUserConcurrent runs many updates at the same version at once:
// exactly one may win, whatever the interleaving.
func testUpdateUserConcurrent(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	u := createUser(t, s, newUser("alice", ""))
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := *u
			mine.Roles = []string{fmt.Sprintf("r%d", i)}
			<-start
			errs[i] = s.UpdateUser(t.Context(), &mine, 1, now())
		}()
	}
	close(start)
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch tokend.ErrorCode(err) {
		case "":
			if won >= 0 {
				t.Fatalf("updates %d and %d both won", won, i)
			}
			won = i
		case tokend.EPRECONDITION:
		default:
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no update won")
	}
	got := getUser(t, s, u.ID)
	if got.Version != 2 || !slices.Equal(got.Roles, []string{fmt.Sprintf("r%d", won)}) {
		t.Errorf("stored version %d roles %v, want 2 and the winner's", got.Version, got.Roles)
	}
}

func testUserClaims(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	claims := map[string]any{
		"dept":   "ops",
		"level":  json.Number("12345678901234567890"), // beyond a float64's precision
		"ratio":  json.Number("0.5"),
		"flags":  []any{"a", true, nil},
		"nested": map[string]any{"x": "ü ☃", "y": []any{}},
		"empty":  "",
	}
	u := newUser("alice", "")
	u.Claims = claims
	createUser(t, s, u)
	wantEqual(t, "user with claims", getUser(t, s, u.ID), u)
	got, err := s.FindUsers(t.Context(), tokend.UserQuery{})
	must(t, err, "find users")
	if len(got) != 1 {
		t.Fatalf("found %d users", len(got))
	}
	wantEqual(t, "found user with claims", got[0], u)

	none := createUser(t, s, newUser("bob", ""))
	if c := getUser(t, s, none.ID).Claims; len(c) != 0 {
		t.Errorf("a user without claims has %v", c)
	}
	cleared := *getUser(t, s, u.ID)
	cleared.Claims = nil
	must(t, s.UpdateUser(t.Context(), &cleared, cleared.Version, now()), "clear claims")
	if c := getUser(t, s, u.ID).Claims; len(c) != 0 {
		t.Errorf("cleared claims are %v", c)
	}
}

func testDeleteUser(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	c := createClient(t, s, newClient("shop"))
	alice := createUser(t, s, newUser("alice", ""))
	bob := createUser(t, s, newUser("bob", ""))
	start := now().Add(-time.Hour)
	live := createSession(t, s, newSession(alice.ID, c.ID, start))
	revoked := newSession(alice.ID, "", start)
	revoked.RevokedAt, revoked.RevokeReason = start, "logout"
	createSession(t, s, revoked)
	bobs := createSession(t, s, newSession(bob.ID, c.ID, start))
	last := latestSeq(t, s)

	wantCode(t, s.DeleteUser(ctx, alice.ID, 7), tokend.EPRECONDITION, "delete at a wrong version")
	wantEqual(t, "user after a refused delete", getUser(t, s, alice.ID), alice)
	last = wantChanges(t, s, last, "refused DeleteUser")

	must(t, s.DeleteUser(ctx, alice.ID, 1), "delete user")
	_, err := s.UserByID(ctx, alice.ID)
	wantCode(t, err, tokend.ENOTFOUND, "user by id after delete")
	for _, se := range []*tokend.Session{live, revoked} {
		_, err := s.SessionByID(ctx, se.ID)
		wantCode(t, err, tokend.ENOTFOUND, "session of the deleted user")
	}
	wantEqual(t, "other user", getUser(t, s, bob.ID), bob)
	wantEqual(t, "other user's session", getSession(t, s, bobs.ID), bobs)
	wantChanges(t, s, last, "DeleteUser", userChange(alice.ID), sessionChange(live.ID))

	wantCode(t, s.DeleteUser(ctx, alice.ID, 0), tokend.ENOTFOUND, "delete again")
	wantCode(t, s.DeleteUser(ctx, newID(), 1), tokend.ENOTFOUND, "delete an unknown user at a version")
	must(t, s.DeleteUser(ctx, bob.ID, 0), "delete whatever the version")
	// The name is free again.
	createUser(t, s, newUser("alice", ""))
}

func testFindUsers(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	c := createClient(t, s, newClient("shop"))
	var all []*tokend.User
	for i, name := range []string{"Alice", "bob", "ALBERT", "carol", "50%_off", "5000_off", "dave", "mike"} {
		clientID := ""
		if i%3 == 2 {
			clientID = c.ID
		}
		u := newUser(name, clientID)
		u.Disabled = i%2 == 1
		all = append(all, createUser(t, s, u))
	}
	byID := slices.SortedFunc(slices.Values(all), func(a, b *tokend.User) int { return cmp.Compare(a.ID, b.ID) })
	keep := func(f func(u *tokend.User) bool) []string {
		var out []string
		for _, u := range byID {
			if f(u) {
				out = append(out, u.ID)
			}
		}
		return out
	}
	none, yes, no := "", true, false
	tests := []struct {
		name string
		q    tokend.UserQuery
		want []string
	}{
		{"all", tokend.UserQuery{}, keep(func(*tokend.User) bool { return true })},
		{"users of no client", tokend.UserQuery{ClientID: &none}, keep(func(u *tokend.User) bool { return u.ClientID == "" })},
		{"end users", tokend.UserQuery{ClientID: &c.ID}, keep(func(u *tokend.User) bool { return u.ClientID == c.ID })},
		{"disabled", tokend.UserQuery{Disabled: &yes}, keep(func(u *tokend.User) bool { return u.Disabled })},
		{"enabled", tokend.UserQuery{Disabled: &no}, keep(func(u *tokend.User) bool { return !u.Disabled })},
		{"search ignores ASCII case", tokend.UserQuery{Search: "al"}, keep(func(u *tokend.User) bool { return u.Username == "Alice" || u.Username == "ALBERT" })},
		{"search takes % and _ literally", tokend.UserQuery{Search: "%_"}, keep(func(u *tokend.User) bool { return u.Username == "50%_off" })},
		{"search and enabled", tokend.UserQuery{Search: "AL", Disabled: &no}, keep(func(u *tokend.User) bool { return u.Username == "Alice" || u.Username == "ALBERT" })},
		{"no match", tokend.UserQuery{Search: "zzz"}, nil},
		{"after the last", tokend.UserQuery{After: byID[len(byID)-1].ID}, nil},
		{"after the third", tokend.UserQuery{After: byID[2].ID}, keep(func(u *tokend.User) bool { return u.ID > byID[2].ID })},
		{"limit", tokend.UserQuery{Limit: 3}, keep(func(u *tokend.User) bool { return u.ID <= byID[2].ID })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.FindUsers(ctx, tc.q)
			must(t, err, "find users")
			if g := ids(got, userID); !slices.Equal(g, tc.want) {
				t.Fatalf("FindUsers(%+v) = %v, want %v", tc.q, g, tc.want)
			}
		})
	}
	t.Run("walk in pages", func(t *testing.T) {
		var seen []string
		after := ""
		for range 10 {
			page, err := s.FindUsers(ctx, tokend.UserQuery{After: after, Limit: 3})
			must(t, err, "find users")
			if len(page) == 0 {
				break
			}
			seen = append(seen, ids(page, userID)...)
			after = page[len(page)-1].ID
		}
		if want := ids(byID, userID); !slices.Equal(seen, want) {
			t.Fatalf("pages gave %v, want %v", seen, want)
		}
	})
	t.Run("default limit is 50", func(t *testing.T) {
		for i := range 52 {
			createUser(t, s, newUser(fmt.Sprintf("bulk%02d", i), ""))
		}
		got, err := s.FindUsers(ctx, tokend.UserQuery{})
		must(t, err, "find users")
		if len(got) != 50 {
			t.Fatalf("FindUsers without a limit returned %d users, want 50", len(got))
		}
	})
}

func testRevokeUserSessions(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	alice := createUser(t, s, newUser("alice", ""))
	bob := createUser(t, s, newUser("bob", ""))
	start := now().Add(-time.Hour)
	a1 := createSession(t, s, newSession(alice.ID, "", start))
	a2 := createSession(t, s, newSession(alice.ID, "", start))
	done := newSession(alice.ID, "", start)
	done.RevokedAt, done.RevokeReason = start, "logout"
	createSession(t, s, done)
	b1 := createSession(t, s, newSession(bob.ID, "", start))
	last := latestSeq(t, s)

	at := now()
	n, err := s.RevokeUserSessions(ctx, alice.ID, at, "password changed")
	must(t, err, "revoke user sessions")
	if n != 2 {
		t.Errorf("revoked %d sessions, want 2", n)
	}
	for _, se := range []*tokend.Session{a1, a2} {
		se.RevokedAt, se.RevokeReason = at, "password changed"
		wantEqual(t, "revoked session", getSession(t, s, se.ID), se)
	}
	wantEqual(t, "session revoked before", getSession(t, s, done.ID), done)
	wantEqual(t, "other user's session", getSession(t, s, b1.ID), b1)
	last = wantChanges(t, s, last, "RevokeUserSessions", sessionChange(a1.ID), sessionChange(a2.ID))

	n, err = s.RevokeUserSessions(ctx, alice.ID, now(), "again")
	must(t, err, "revoke user sessions again")
	if n != 0 {
		t.Errorf("revoking again revoked %d sessions", n)
	}
	wantChanges(t, s, last, "RevokeUserSessions again")
	if n, err := s.RevokeUserSessions(ctx, newID(), now(), "x"); err != nil || n != 0 {
		t.Errorf("unknown user: %d, %v", n, err)
	}
}

func testFindSessions(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	alice := createUser(t, s, newUser("alice", ""))
	bob := createUser(t, s, newUser("bob", ""))
	at := now()
	var alices []*tokend.Session
	for range 5 {
		alices = append(alices, createSession(t, s, newSession(alice.ID, "", at.Add(-time.Hour))))
	}
	expired := newSession(alice.ID, "", at.Add(-48*time.Hour))
	createSession(t, s, expired)
	revoked := newSession(alice.ID, "", at.Add(-time.Hour))
	revoked.RevokedAt = at.Add(-time.Minute)
	createSession(t, s, revoked)
	bobs := createSession(t, s, newSession(bob.ID, "", at.Add(-time.Hour)))

	got, err := s.FindSessions(ctx, tokend.SessionQuery{UserID: alice.ID, Live: at})
	must(t, err, "find sessions")
	want := slices.SortedFunc(slices.Values(alices), func(a, b *tokend.Session) int { return cmp.Compare(a.ID, b.ID) })
	if g, w := ids(got, sessionID), ids(want, sessionID); !slices.Equal(g, w) {
		t.Fatalf("live sessions of alice %v, want %v", g, w)
	}
	for i := range got {
		wantEqual(t, "listed session", got[i], want[i])
	}
	page, err := s.FindSessions(ctx, tokend.SessionQuery{UserID: alice.ID, Live: at, After: want[1].ID, Limit: 2})
	must(t, err, "find sessions page")
	if g, w := ids(page, sessionID), ids(want[2:4], sessionID); !slices.Equal(g, w) {
		t.Errorf("page %v, want %v", g, w)
	}
	everyone, err := s.FindSessions(ctx, tokend.SessionQuery{Live: at, Limit: 100})
	must(t, err, "find everyone's sessions")
	if len(everyone) != 6 || !slices.Contains(ids(everyone, sessionID), bobs.ID) {
		t.Errorf("live sessions of everyone: %v", ids(everyone, sessionID))
	}
	withDead, err := s.FindSessions(ctx, tokend.SessionQuery{UserID: alice.ID, Limit: 100})
	must(t, err, "find sessions, live or not")
	if len(withDead) != 7 {
		t.Errorf("alice has %d sessions in all, want 7", len(withDead))
	}
}

func sessionID(s *tokend.Session) string { return s.ID }

func testUpdateClient(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	c := createClient(t, s, newClient("shop"))
	other := createClient(t, s, newClient("other"))
	last := latestSeq(t, s)

	changed := *c
	changed.Name, changed.Grants, changed.Scopes = "store", []string{tokend.GrantPassword}, []string{"tokend.admin"}
	changed.Mode, changed.AccessTTL, changed.Disabled = tokend.ModeSandbox, 90*time.Second, true
	changed.SecretHash, changed.Public = randomBytes(32), true // not written by UpdateClient
	must(t, s.UpdateClient(ctx, &changed, 1), "update client")
	if changed.Version != 2 {
		t.Errorf("UpdateClient set Version %d, want 2", changed.Version)
	}
	want := *c
	want.Name, want.Grants, want.Scopes = "store", []string{tokend.GrantPassword}, []string{"tokend.admin"}
	want.Mode, want.AccessTTL, want.Disabled = tokend.ModeSandbox, 90*time.Second, true
	wantEqual(t, "updated client", getClient(t, s, c.ID), &want)
	wantEqual(t, "other client", getClient(t, s, other.ID), other)
	last = wantChanges(t, s, last, "UpdateClient", clientChange(c.ID))

	wantCode(t, s.UpdateClient(ctx, &changed, 1), tokend.EPRECONDITION, "update at an old version")
	wantEqual(t, "client after a stale update", getClient(t, s, c.ID), &want)
	wantChanges(t, s, last, "stale UpdateClient")
	wantCode(t, s.UpdateClient(ctx, newClient("ghost"), 1), tokend.ENOTFOUND, "update an unknown client")
}

func testDeleteClient(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	c := createClient(t, s, newClient("shop"))
	other := createClient(t, s, newClient("other"))
	endUser := createUser(t, s, newUser("carol", c.ID))
	alice := createUser(t, s, newUser("alice", ""))
	otherEnd := createUser(t, s, newUser("carol", other.ID))
	start := now().Add(-time.Hour)
	atClient := createSession(t, s, newSession(alice.ID, c.ID, start))         // alice's login at the client
	ofEndUser := createSession(t, s, newSession(endUser.ID, "", start))        // the end user's, at no client
	elsewhere := createSession(t, s, newSession(alice.ID, other.ID, start))    // alice at another client
	otherEnds := createSession(t, s, newSession(otherEnd.ID, other.ID, start)) // another client's end user
	last := latestSeq(t, s)

	wantCode(t, s.DeleteClient(ctx, c.ID, 2), tokend.EPRECONDITION, "delete at a wrong version")
	wantEqual(t, "client after a refused delete", getClient(t, s, c.ID), c)
	last = wantChanges(t, s, last, "refused DeleteClient")

	must(t, s.DeleteClient(ctx, c.ID, 1), "delete client")
	_, err := s.ClientByID(ctx, c.ID)
	wantCode(t, err, tokend.ENOTFOUND, "client by id after delete")
	_, err = s.UserByID(ctx, endUser.ID)
	wantCode(t, err, tokend.ENOTFOUND, "end user of the deleted client")
	for _, se := range []*tokend.Session{atClient, ofEndUser} {
		_, err := s.SessionByID(ctx, se.ID)
		wantCode(t, err, tokend.ENOTFOUND, "session at the deleted client or of its end user")
	}
	wantEqual(t, "user of no client", getUser(t, s, alice.ID), alice)
	wantEqual(t, "other client's end user", getUser(t, s, otherEnd.ID), otherEnd)
	wantEqual(t, "session at another client", getSession(t, s, elsewhere.ID), elsewhere)
	wantEqual(t, "other client's end user's session", getSession(t, s, otherEnds.ID), otherEnds)
	wantChanges(t, s, last, "DeleteClient", clientChange(c.ID), userChange(endUser.ID), sessionChange(atClient.ID), sessionChange(ofEndUser.ID))

	wantCode(t, s.DeleteClient(ctx, c.ID, 0), tokend.ENOTFOUND, "delete again")
	must(t, s.DeleteClient(ctx, other.ID, 0), "delete whatever the version")
}

func testFindClients(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	var all []*tokend.ClientApp
	for i := range 7 {
		all = append(all, createClient(t, s, newClient(fmt.Sprintf("c%d", i))))
	}
	slices.SortFunc(all, func(a, b *tokend.ClientApp) int { return cmp.Compare(a.ID, b.ID) })
	var seen []*tokend.ClientApp
	after := ""
	for range 10 {
		page, err := s.FindClients(t.Context(), tokend.ClientQuery{After: after, Limit: 3})
		must(t, err, "find clients")
		if len(page) == 0 {
			break
		}
		if len(page) > 3 {
			t.Fatalf("page of %d clients, limit 3", len(page))
		}
		seen = append(seen, page...)
		after = page[len(page)-1].ID
	}
	clientID := func(c *tokend.ClientApp) string { return c.ID }
	if g, w := ids(seen, clientID), ids(all, clientID); !slices.Equal(g, w) {
		t.Fatalf("pages gave %v, want %v (by id)", g, w)
	}
	for i := range seen {
		wantEqual(t, "listed client", seen[i], all[i])
	}
	if got, err := s.FindClients(t.Context(), tokend.ClientQuery{After: uuid.Max.String()}); err != nil || len(got) != 0 {
		t.Errorf("after the greatest id: %v, %v", got, err)
	}
}

func testFindAudit(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	t0 := now().Add(-time.Hour)
	var events []tokend.AuditEvent
	for i := range 9 {
		events = append(events, tokend.AuditEvent{
			At: t0.Add(time.Duration(i) * time.Minute), Event: []string{"user.created", "user.deleted", "token.issued"}[i%3],
			Subject: fmt.Sprintf("s%d", i%2), ClientID: []string{"", "c1"}[i%2], Outcome: "success",
			Actor: []string{"cli", "client:c1", ""}[i%3], Detail: fmt.Sprint(i),
		})
	}
	must(t, s.AppendAudit(ctx, events), "append audit")
	find := func(q tokend.AuditQuery) []string {
		t.Helper()
		got, err := s.FindAudit(ctx, q)
		must(t, err, "find audit")
		out := []string{}
		for _, e := range got {
			out = append(out, e.Detail)
		}
		return out
	}
	tests := []struct {
		name string
		q    tokend.AuditQuery
		want []string
	}{
		{"newest first", tokend.AuditQuery{}, []string{"8", "7", "6", "5", "4", "3", "2", "1", "0"}},
		{"oldest first", tokend.AuditQuery{Ascending: true, Limit: 3}, []string{"0", "1", "2"}},
		{"limit", tokend.AuditQuery{Limit: 2}, []string{"8", "7"}},
		{"since and until", tokend.AuditQuery{Since: t0.Add(2 * time.Minute), Until: t0.Add(5 * time.Minute)}, []string{"4", "3", "2"}},
		{"subject", tokend.AuditQuery{Subject: "s1"}, []string{"7", "5", "3", "1"}},
		{"event", tokend.AuditQuery{Event: "user.deleted"}, []string{"7", "4", "1"}},
		{"client", tokend.AuditQuery{ClientID: "c1", Event: "user.created"}, []string{"3"}},
		{"no match", tokend.AuditQuery{Subject: "nobody"}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := find(tc.q); !slices.Equal(got, tc.want) {
				t.Fatalf("FindAudit(%+v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
	t.Run("cursor", func(t *testing.T) {
		first, err := s.FindAudit(ctx, tokend.AuditQuery{Limit: 4})
		must(t, err, "find audit")
		if got := find(tokend.AuditQuery{Limit: 4, Cursor: first[3].Seq}); !slices.Equal(got, []string{"4", "3", "2", "1"}) {
			t.Errorf("second page newest first: %v", got)
		}
		if got := find(tokend.AuditQuery{Ascending: true, Cursor: first[3].Seq}); !slices.Equal(got, []string{"6", "7", "8"}) {
			t.Errorf("after the cursor oldest first: %v", got)
		}
	})
	t.Run("every field", func(t *testing.T) {
		got, err := s.FindAudit(ctx, tokend.AuditQuery{Limit: 1})
		must(t, err, "find audit")
		want := events[8]
		want.Seq, want.Count = got[0].Seq, 1 // stores write a count of 0 as 1
		if !got[0].At.Equal(want.At) {
			t.Fatalf("at %v, want %v", got[0].At, want.At)
		}
		got[0].At, want.At = time.Time{}, time.Time{}
		if got[0] != want {
			t.Errorf("event %+v, want %+v", got[0], want)
		}
	})
}
