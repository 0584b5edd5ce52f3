package storetest

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

func testUserRoundTrip(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	client := createClient(t, s, newClient("shop"))
	at := now()
	tests := []struct {
		name string
		user *tokend.User
	}{
		{"every field", &tokend.User{
			ID:            newID(),
			Username:      "alice",
			PasswordHash:  "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA",
			Roles:         []string{"admin", "reader", "billing"},
			Disabled:      true,
			CreatedAt:     at.Add(-72 * time.Hour),
			LastLoginAt:   at.Add(-time.Hour),
			LastRefreshAt: at.Add(-time.Minute),
			// TokensNotBefore at a microsecond, to check that none is lost.
			TokensNotBefore: at.Add(-30*time.Second + 7*time.Microsecond),
		}},
		{"zero values", &tokend.User{
			ID:        newID(),
			Username:  "bob",
			CreatedAt: at,
		}},
		{"client end user", &tokend.User{
			ID:        newID(),
			Username:  "carol",
			Roles:     []string{"buyer"},
			ClientID:  client.ID,
			CreatedAt: at.Add(123 * time.Microsecond),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			createUser(t, s, tc.user)
			wantEqual(t, "UserByID", getUser(t, s, tc.user.ID), tc.user)
			if tc.user.ClientID != "" {
				return
			}
			got, err := s.UserByName(t.Context(), tc.user.Username)
			must(t, err, "user by name")
			wantEqual(t, "UserByName", got, tc.user)
		})
	}
	t.Run("zero times stay zero", func(t *testing.T) {
		u := getUser(t, s, tests[1].user.ID)
		if !u.LastLoginAt.IsZero() || !u.LastRefreshAt.IsZero() || !u.TokensNotBefore.IsZero() {
			t.Errorf("LastLoginAt = %v, LastRefreshAt = %v, TokensNotBefore = %v, want zero times", u.LastLoginAt, u.LastRefreshAt, u.TokensNotBefore)
		}
	})
}

func testUserUniqueUsername(t *testing.T, open func(t *testing.T) tokend.Store) {
	const c1, c2 = "client 1", "client 2" // replaced by the ids of real clients
	tests := []struct {
		name          string
		first, second [2]string // username, client
		sameID        bool
		want          string
	}{
		{"same name, no client", [2]string{"alice", ""}, [2]string{"alice", ""}, false, tokend.ECONFLICT},
		{"same name, same client", [2]string{"alice", c1}, [2]string{"alice", c1}, false, tokend.ECONFLICT},
		{"same name, global and client", [2]string{"alice", ""}, [2]string{"alice", c1}, false, ""},
		{"same name, client and global", [2]string{"alice", c1}, [2]string{"alice", ""}, false, ""},
		{"same name, two clients", [2]string{"alice", c1}, [2]string{"alice", c2}, false, ""},
		{"other name", [2]string{"alice", ""}, [2]string{"bob", ""}, false, ""},
		{"same id", [2]string{"alice", ""}, [2]string{"bob", ""}, true, tokend.ECONFLICT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			clients := map[string]string{
				"": "",
				c1: createClient(t, s, newClient("one")).ID,
				c2: createClient(t, s, newClient("two")).ID,
			}
			first := createUser(t, s, newUser(tc.first[0], clients[tc.first[1]]))
			second := newUser(tc.second[0], clients[tc.second[1]])
			if tc.sameID {
				second.ID = first.ID
			}
			wantCode(t, s.CreateUser(t.Context(), second), tc.want, "create second user")
			wantEqual(t, "first user", getUser(t, s, first.ID), first)
			if tc.want == "" {
				wantEqual(t, "second user", getUser(t, s, second.ID), second)
			}
		})
	}
}

func testUserByNameIgnoresClientUsers(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("shop"))
	createUser(t, s, newUser("dave", c.ID))
	_, err := s.UserByName(t.Context(), "dave")
	wantCode(t, err, tokend.ENOTFOUND, "user by name of a client's end user")

	global := createUser(t, s, newUser("dave", ""))
	got, err := s.UserByName(t.Context(), "dave")
	must(t, err, "user by name")
	wantEqual(t, "UserByName", got, global)
}

func testUserList(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c1 := createClient(t, s, newClient("one"))
	c2 := createClient(t, s, newClient("two"))
	// Created out of order, so that the order of the list must come from the usernames.
	users := map[string][]*tokend.User{}
	for _, u := range []*tokend.User{
		newUser("mallory", ""), newUser("carol", c1.ID), newUser("alice", ""),
		newUser("zed", c1.ID), newUser("alice", c1.ID), newUser("bob", ""), newUser("erin", c2.ID),
	} {
		createUser(t, s, u)
		users[u.ClientID] = append(users[u.ClientID], u)
	}
	tests := []struct {
		name   string
		filter tokend.UserFilter
		want   []*tokend.User
	}{
		{"no client", tokend.UserFilter{}, users[""]},
		{"client one", tokend.UserFilter{ClientID: c1.ID}, users[c1.ID]},
		{"client two", tokend.UserFilter{ClientID: c2.ID}, users[c2.ID]},
		{"unknown client", tokend.UserFilter{ClientID: uuid.NewString()}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := slices.SortedFunc(slices.Values(tc.want), func(a, b *tokend.User) int { return cmp.Compare(a.Username, b.Username) })
			got, err := s.ListUsers(t.Context(), tc.filter)
			must(t, err, "list users")
			if g, w := ids(got, userID), ids(want, userID); !slices.Equal(g, w) {
				t.Fatalf("ListUsers(%+v) = %v, want %v (ordered by username)", tc.filter, g, w)
			}
			for i := range got {
				wantEqual(t, "listed user "+want[i].Username, got[i], want[i])
			}
		})
	}
}

func testUserSetPassword(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	u := createUser(t, s, newUser("alice", ""))
	other := createUser(t, s, newUser("bob", ""))
	for _, hash := range []string{"$argon2id$v=19$m=65536,t=1,p=4$bmV3$bmV3", ""} {
		must(t, s.SetUserPassword(t.Context(), u.ID, hash), "set user password")
		u.PasswordHash = hash
		wantEqual(t, "user", getUser(t, s, u.ID), u)
	}
	wantEqual(t, "other user", getUser(t, s, other.ID), other)
}

func testUserTouch(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	u := createUser(t, s, newUser("alice", ""))
	other := createUser(t, s, newUser("bob", ""))
	login := now().Add(time.Minute)
	must(t, s.TouchLogin(t.Context(), u.ID, login), "touch login")
	u.LastLoginAt = login
	wantEqual(t, "user after TouchLogin", getUser(t, s, u.ID), u)

	refresh := login.Add(time.Minute + time.Microsecond)
	must(t, s.TouchRefresh(t.Context(), u.ID, refresh), "touch refresh")
	u.LastRefreshAt = refresh
	wantEqual(t, "user after TouchRefresh", getUser(t, s, u.ID), u)

	later := refresh.Add(time.Hour)
	must(t, s.TouchLogin(t.Context(), u.ID, later), "touch login again")
	u.LastLoginAt = later
	wantEqual(t, "user after second TouchLogin", getUser(t, s, u.ID), u)
	wantEqual(t, "other user", getUser(t, s, other.ID), other)
}

func testUserDisable(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("shop"))
	alice := createUser(t, s, newUser("alice", ""))
	bob := createUser(t, s, newUser("bob", ""))
	start := now().Add(-time.Hour)
	live1 := createSession(t, s, newSession(alice.ID, c.ID, start))
	live2 := createSession(t, s, newSession(alice.ID, "", start))
	revoked := newSession(alice.ID, c.ID, start)
	revoked.RevokedAt, revoked.RevokeReason = start.Add(time.Minute), "logout"
	createSession(t, s, revoked)
	bobs := createSession(t, s, newSession(bob.ID, c.ID, start))

	at := now()
	must(t, s.DisableUser(t.Context(), alice.ID, at), "disable user")

	alice.Disabled = true
	wantEqual(t, "disabled user", getUser(t, s, alice.ID), alice)
	wantEqual(t, "other user", getUser(t, s, bob.ID), bob)
	for _, live := range []*tokend.Session{live1, live2} {
		got := getSession(t, s, live.ID)
		if got.RevokeReason == "" {
			t.Errorf("session %s revoked with an empty reason", live.ID)
		}
		live.RevokedAt, live.RevokeReason = at, got.RevokeReason
		wantEqual(t, "live session of the disabled user", got, live)
	}
	wantEqual(t, "already revoked session", getSession(t, s, revoked.ID), revoked)
	wantEqual(t, "other user's session", getSession(t, s, bobs.ID), bobs)
}

// SetUserPasswordEndSessions sets the hash and TokensNotBefore and revokes
// exactly the user's live sessions, recording a change for the user and
// each session it revoked.
func testUserSetPasswordEndSessions(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("shop"))
	alice := createUser(t, s, newUser("alice", ""))
	bob := createUser(t, s, newUser("bob", ""))
	start := now().Add(-time.Hour)
	live1 := createSession(t, s, newSession(alice.ID, c.ID, start))
	live2 := createSession(t, s, newSession(alice.ID, "", start))
	revoked := newSession(alice.ID, c.ID, start)
	revoked.RevokedAt, revoked.RevokeReason = start.Add(time.Minute), "logout"
	createSession(t, s, revoked)
	bobs := createSession(t, s, newSession(bob.ID, c.ID, start))
	before := latestSeq(t, s)

	at := now().Add(3 * time.Microsecond)
	const hash = "$argon2id$v=19$m=65536,t=1,p=4$bmV3$bmV3"
	must(t, s.SetUserPasswordEndSessions(t.Context(), alice.ID, hash, at), "set password, end sessions")

	alice.PasswordHash, alice.TokensNotBefore = hash, at
	wantEqual(t, "user", getUser(t, s, alice.ID), alice)
	wantEqual(t, "other user", getUser(t, s, bob.ID), bob)
	for _, live := range []*tokend.Session{live1, live2} {
		live.RevokedAt, live.RevokeReason = at, "password changed"
		wantEqual(t, "live session of the user", getSession(t, s, live.ID), live)
	}
	wantEqual(t, "already revoked session", getSession(t, s, revoked.ID), revoked)
	wantEqual(t, "other user's session", getSession(t, s, bobs.ID), bobs)

	got, _ := changesAfter(t, s, before)
	var refs []string
	for _, ch := range got {
		refs = append(refs, ch.Kind+" "+ch.Ref)
	}
	slices.Sort(refs)
	want := []string{tokend.ChangeSession + " " + live1.ID, tokend.ChangeSession + " " + live2.ID, tokend.ChangeUser + " " + alice.ID}
	slices.Sort(want)
	if !slices.Equal(refs, want) {
		t.Errorf("changes %v, want %v", refs, want)
	}
	_, sessions, err := s.Revoked(t.Context(), now())
	must(t, err, "revoked")
	for _, id := range []string{live1.ID, live2.ID} {
		if !slices.Contains(sessions, id) {
			t.Errorf("Revoked does not list session %s", id)
		}
	}
}

func testUserNotFound(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	createUser(t, s, newUser("alice", ""))
	missing := newID()
	tests := []struct {
		name string
		call func() error
	}{
		{"UserByID", func() error { _, err := s.UserByID(t.Context(), missing); return err }},
		{"UserByName", func() error { _, err := s.UserByName(t.Context(), "nobody"); return err }},
		{"SetUserPassword", func() error { return s.SetUserPassword(t.Context(), missing, "x") }},
		{"DisableUser", func() error { return s.DisableUser(t.Context(), missing, now()) }},
		{"SetUserPasswordEndSessions", func() error { return s.SetUserPasswordEndSessions(t.Context(), missing, "x", now()) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.call(), tokend.ENOTFOUND, tc.name+" of an unknown user")
		})
	}
}
