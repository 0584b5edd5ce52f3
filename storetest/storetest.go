// Package storetest is the one conformance suite that every tokend.Store
// runs, so that the SQLite and PostgreSQL stores keep the same semantics:
// the same error codes, the same compare-and-swap behaviour under
// concurrency, and the same change log that caches rely on.
//
// A store's own test calls Run with a function that opens a fresh, empty
// store; the suite never closes it (the opener registers that with t.Cleanup).
// Times are real times truncated to microseconds, the resolution both
// backends keep.
package storetest

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

// Run runs the whole suite. open must return a fresh, empty store each time
// it is called, and arrange for it to be closed when t ends.
func Run(t *testing.T, open func(t *testing.T) tokend.Store) {
	type test struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) tokend.Store)
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"Users", []test{
			{"RoundTrip", testUserRoundTrip},
			{"UniqueUsername", testUserUniqueUsername},
			{"UserByNameIgnoresClientUsers", testUserByNameIgnoresClientUsers},
			{"List", testUserList},
			{"SetPassword", testUserSetPassword},
			{"Touch", testUserTouch},
			{"DisableRevokesSessions", testUserDisable},
			{"SetPasswordEndSessions", testUserSetPasswordEndSessions},
			{"NotFound", testUserNotFound},
		}},
		{"EndUsers", []test{
			{"Cap", testEndUserCap},
			{"CapConcurrent", testEndUserCapConcurrent},
			{"Rate", testEndUserRate},
			{"RateConcurrent", testEndUserRateConcurrent},
		}},
		{"Clients", []test{
			{"RoundTrip", testClientRoundTrip},
			{"Duplicate", testClientDuplicate},
			{"List", testClientList},
			{"SetSecret", testClientSetSecret},
			{"Disable", testClientDisable},
			{"NotFound", testClientNotFound},
		}},
		{"Keys", []test{
			{"CompareAndSwap", testKeyCompareAndSwap},
			{"List", testKeyList},
			{"Revoke", testKeyRevoke},
			{"ConcurrentRotation", testKeyConcurrentRotation},
		}},
		{"Sessions", []test{
			{"RoundTrip", testSessionRoundTrip},
			{"Advance", testSessionAdvance},
			{"AdvanceInSequence", testSessionAdvanceInSequence},
			{"ConcurrentAdvance", testSessionConcurrentAdvance},
			{"Revoke", testSessionRevoke},
		}},
		{"RefreshStep", []test{
			{"Rule", testRefreshStepRule},
			{"Concurrent", testRefreshStepConcurrent},
			{"BesidePasswordChange", testRefreshStepBesidePasswordChange},
		}},
		{"RevokedTokens", []test{
			{"Revoke", testTokenRevoke},
			{"Listing", testRevokedListing},
			{"WithExpiry", testRevokedTokensWithExpiry},
			{"SessionsWithTimes", testRevokedSessionsWithTimes},
		}},
		{"Failures", []test{
			{"CountAndWindow", testFailuresCountAndWindow},
			{"Concurrent", testFailuresConcurrent},
			{"ReserveLimitAndLock", testReserveLimitAndLock},
			{"ReserveConcurrent", testReserveConcurrent},
			{"Settle", testSettleAttempts},
		}},
		{"Audit", []test{
			{"AppendAndList", testAuditAppendAndList},
			{"Count", testAuditCount},
			{"CappedFields", testAuditCappedFields},
			{"PurgeByRetention", testAuditPurge},
		}},
		{"Management", []test{
			{"Versions", testVersions},
			{"UpdateUser", testUpdateUser},
			{"UpdateUserConcurrent", testUpdateUserConcurrent},
			{"UserClaims", testUserClaims},
			{"DeleteUser", testDeleteUser},
			{"FindUsers", testFindUsers},
			{"RevokeUserSessions", testRevokeUserSessions},
			{"FindSessions", testFindSessions},
			{"UpdateClient", testUpdateClient},
			{"DeleteClient", testDeleteClient},
			{"FindClients", testFindClients},
			{"FindAudit", testFindAudit},
		}},
		{"Import", []test{
			{"Created", testImportCreated},
			{"Exists", testImportExists},
			{"Updated", testImportUpdated},
			{"Taken", testImportTaken},
			{"Concurrent", testImportConcurrent},
		}},
		{"Secret", []test{
			{"CreatedOnce", testSecretCreatedOnce},
			{"Concurrent", testSecretConcurrent},
		}},
		{"Reseal", []test{
			{"Rewrites", testResealRewrites},
			{"RollsBack", testResealRollsBack},
			{"Concurrent", testResealConcurrent},
		}},
		{"Changes", []test{
			{"Recorded", testChangesRecorded},
			{"After", testChangesAfter},
		}},
		{"Purge", []test{
			{"Expired", testPurgeExpired},
			{"Changes", testPurgeChanges},
			{"RevokedSessions", testPurgeRevokedSessions},
		}},
		{"Ping", []test{
			{"Open", testPing},
		}},
		{"Console", []test{
			{"SessionRoundTrip", testConsoleSessionRoundTrip},
			{"SessionTouchAndEnd", testConsoleSessionTouchAndEnd},
			{"SessionPurge", testConsoleSessionPurge},
			{"SetupTokenOnce", testSetupTokenOnce},
			{"SetupTokenExpiry", testSetupTokenExpiry},
			{"SetupTokenConcurrent", testSetupTokenConcurrent},
			{"FindUsersPrefixAndRole", testFindUsersPrefixAndRole},
			{"Stats", testStats},
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
			}
		})
	}
}

// Fixtures and helpers.

// now is the current time at the resolution every store keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func newUser(username, clientID string) *tokend.User {
	return &tokend.User{
		ID:           newID(),
		Username:     username,
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$" + uuid.NewString(),
		Roles:        []string{"reader"},
		ClientID:     clientID,
		CreatedAt:    now(),
	}
}

func newClient(name string) *tokend.ClientApp {
	return &tokend.ClientApp{
		ID:         uuid.NewString(),
		Name:       name,
		SecretHash: randomBytes(32),
		Grants:     []string{tokend.GrantClientCredentials},
		Scopes:     []string{"read"},
		Mode:       tokend.ModeProduction,
		CreatedAt:  now(),
	}
}

func newSession(userID, clientID string, at time.Time) *tokend.Session {
	return &tokend.Session{
		ID:        newID(),
		UserID:    userID,
		ClientID:  clientID,
		Scope:     "read",
		Dialect:   "oauth",
		RotatedAt: at,
		CreatedAt: at,
		ExpiresAt: at.Add(24 * time.Hour),
	}
}

func newKey(alg string) *tokend.SigningKey {
	at := now()
	return &tokend.SigningKey{
		ID:          uuid.NewString(),
		Alg:         alg,
		PrivateKey:  randomBytes(48),
		CreatedAt:   at,
		ActivatesAt: at.Add(time.Hour),
	}
}

func must(t *testing.T, err error, doing string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", doing, err)
	}
}

// wantCode fails t unless err carries code ("" for no error).
func wantCode(t *testing.T, err error, code, doing string) {
	t.Helper()
	if got := tokend.ErrorCode(err); got != code {
		t.Fatalf("%s: error code %q (%v), want %q", doing, got, err, code)
	}
}

func createUser(t *testing.T, s tokend.Store, u *tokend.User) *tokend.User {
	t.Helper()
	must(t, s.CreateUser(t.Context(), u), "create user "+u.Username)
	return u
}

func createClient(t *testing.T, s tokend.Store, c *tokend.ClientApp) *tokend.ClientApp {
	t.Helper()
	must(t, s.CreateClient(t.Context(), c), "create client "+c.Name)
	return c
}

func createSession(t *testing.T, s tokend.Store, se *tokend.Session) *tokend.Session {
	t.Helper()
	must(t, s.CreateSession(t.Context(), se), "create session")
	return se
}

func addKey(t *testing.T, s tokend.Store, k *tokend.SigningKey, afterKid string) *tokend.SigningKey {
	t.Helper()
	must(t, s.AddKey(t.Context(), k, afterKid), "add key")
	return k
}

func getUser(t *testing.T, s tokend.Store, id string) *tokend.User {
	t.Helper()
	u, err := s.UserByID(t.Context(), id)
	must(t, err, "user by id")
	return u
}

func getClient(t *testing.T, s tokend.Store, id string) *tokend.ClientApp {
	t.Helper()
	c, err := s.ClientByID(t.Context(), id)
	must(t, err, "client by id")
	return c
}

func getSession(t *testing.T, s tokend.Store, id string) *tokend.Session {
	t.Helper()
	se, err := s.SessionByID(t.Context(), id)
	must(t, err, "session by id")
	return se
}

// keysOf returns the keys of one algorithm, in the order ListKeys gives them.
func keysOf(t *testing.T, s tokend.Store, alg string) []*tokend.SigningKey {
	t.Helper()
	all, err := s.ListKeys(t.Context())
	must(t, err, "list keys")
	var out []*tokend.SigningKey
	for _, k := range all {
		if k.Alg == alg {
			out = append(out, k)
		}
	}
	return out
}

func changesAfter(t *testing.T, s tokend.Store, after int64) ([]tokend.Change, int64) {
	t.Helper()
	cs, latest, err := s.Changes(t.Context(), after)
	must(t, err, fmt.Sprintf("changes after %d", after))
	return cs, latest
}

// latestSeq returns the seq of the newest change.
func latestSeq(t *testing.T, s tokend.Store) int64 {
	t.Helper()
	_, latest := changesAfter(t, s, 0)
	return latest
}

// wantEqual fails t if got and want, pointers to the same struct type,
// differ in any field. Times compare with Equal (a store may hand back
// another location), byte and string slices by content (nil and empty are
// the same), maps with reflect.DeepEqual (nil and empty are the same),
// everything else with ==. Version fields are left out: the store bumps
// them, and the management tests check them on their own.
func wantEqual[T any](t *testing.T, what string, got, want *T) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: got nil, want %+v", what, want)
	}
	gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	var diffs []string
	for i := range wv.NumField() {
		if wv.Type().Field(i).Name == "Version" {
			continue
		}
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		var same bool
		switch w := w.(type) {
		case map[string]any:
			gm := g.(map[string]any)
			same = (len(w) == 0 && len(gm) == 0) || reflect.DeepEqual(w, gm)
		case time.Time:
			same = w.Equal(g.(time.Time))
		case []byte:
			same = bytes.Equal(w, g.([]byte))
		case []string:
			same = slices.Equal(w, g.([]string))
		default:
			same = g == w
		}
		if !same {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", wv.Type().Field(i).Name, g, w))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%s differs:\n\t%s", what, strings.Join(diffs, "\n\t"))
	}
}

func ids[T any](l []*T, id func(*T) string) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = id(v)
	}
	return out
}

func userID(u *tokend.User) string          { return u.ID }
func keyID(k *tokend.SigningKey) string     { return k.ID }
func clientName(c *tokend.ClientApp) string { return c.Name }

// Users.

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

// Clients.

func testClientRoundTrip(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	at := now()
	tests := []struct {
		name   string
		client *tokend.ClientApp
	}{
		{"confidential, every field", &tokend.ClientApp{
			ID:              uuid.NewString(),
			Name:            "Billing backend",
			SecretHash:      append([]byte{0, 0xff}, randomBytes(30)...),
			PrevSecretHash:  randomBytes(32),
			PrevSecretUntil: at.Add(time.Hour),
			Grants:          []string{tokend.GrantClientCredentials, tokend.GrantPassword, tokend.GrantRefreshToken},
			Scopes:          []string{"read", "write", "admin:billing"},
			Mode:            tokend.ModeSandbox,
			AccessTTL:       90 * time.Second,
			Disabled:        true,
			CreatedAt:       at.Add(-time.Hour),
		}},
		{"public, zero values", &tokend.ClientApp{
			ID:        uuid.NewString(),
			Name:      "Mobile app",
			Public:    true,
			Grants:    []string{tokend.GrantPassword},
			Mode:      tokend.ModeProduction,
			CreatedAt: at,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			createClient(t, s, tc.client)
			wantEqual(t, "ClientByID", getClient(t, s, tc.client.ID), tc.client)
		})
	}
}

func testClientDuplicate(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("one"))
	dup := newClient("two")
	dup.ID = c.ID
	wantCode(t, s.CreateClient(t.Context(), dup), tokend.ECONFLICT, "create client with a used id")
	wantEqual(t, "first client", getClient(t, s, c.ID), c)
}

func testClientList(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	got, err := s.ListClients(t.Context())
	must(t, err, "list clients")
	if len(got) != 0 {
		t.Fatalf("ListClients of an empty store = %v, want none", ids(got, clientName))
	}
	want := map[string]*tokend.ClientApp{}
	for _, name := range []string{"one", "two", "three"} {
		c := createClient(t, s, newClient(name))
		want[c.ID] = c
	}
	got, err = s.ListClients(t.Context())
	must(t, err, "list clients")
	if len(got) != len(want) {
		t.Fatalf("ListClients = %v, want 3 clients", ids(got, clientName))
	}
	for _, c := range got {
		if want[c.ID] == nil {
			t.Fatalf("ListClients returned unknown client %s", c.ID)
		}
		wantEqual(t, "listed client "+c.Name, c, want[c.ID])
		delete(want, c.ID)
	}
}

func testClientSetSecret(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("shop"))
	other := createClient(t, s, newClient("other"))
	until := now().Add(time.Hour)
	// Steps run in order on one client; each states the secret fields after it.
	h := [][]byte{c.SecretHash, randomBytes(32), randomBytes(32), randomBytes(32), randomBytes(32)}
	steps := []struct {
		name      string
		hash      []byte
		prevUntil time.Time
		wantPrev  []byte
		wantUntil time.Time
	}{
		{"without overlap", h[1], time.Time{}, nil, time.Time{}},
		{"with overlap", h[2], until, h[1], until},
		{"with overlap again", h[3], until.Add(time.Minute), h[2], until.Add(time.Minute)},
		{"without overlap clears previous", h[4], time.Time{}, nil, time.Time{}},
	}
	for _, st := range steps {
		must(t, s.SetClientSecret(t.Context(), c.ID, st.hash, st.prevUntil), "set client secret "+st.name)
		c.SecretHash, c.PrevSecretHash, c.PrevSecretUntil = st.hash, st.wantPrev, st.wantUntil
		wantEqual(t, "client after SetClientSecret "+st.name, getClient(t, s, c.ID), c)
	}
	wantEqual(t, "other client", getClient(t, s, other.ID), other)
}

func testClientDisable(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("shop"))
	other := createClient(t, s, newClient("other"))
	must(t, s.DisableClient(t.Context(), c.ID), "disable client")
	c.Disabled = true
	wantEqual(t, "disabled client", getClient(t, s, c.ID), c)
	wantEqual(t, "other client", getClient(t, s, other.ID), other)
}

func testClientNotFound(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	createClient(t, s, newClient("shop"))
	missing := uuid.NewString()
	tests := []struct {
		name string
		call func() error
	}{
		{"ClientByID", func() error { _, err := s.ClientByID(t.Context(), missing); return err }},
		{"SetClientSecret", func() error { return s.SetClientSecret(t.Context(), missing, randomBytes(32), time.Time{}) }},
		{"DisableClient", func() error { return s.DisableClient(t.Context(), missing) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.call(), tokend.ENOTFOUND, tc.name+" of an unknown client")
		})
	}
}

// Keys.

func testKeyCompareAndSwap(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	e1, e2, e3 := newKey("ES256"), newKey("ES256"), newKey("ES256")
	d1 := newKey("EdDSA")
	reused := newKey("ES256")
	reused.ID = e1.ID
	// Steps run in order on one store.
	steps := []struct {
		name     string
		key      *tokend.SigningKey
		afterKid string
		want     string
	}{
		{"first key of an empty line", e1, "", ""},
		{"again as first key", e2, "", tokend.ECONFLICT},
		{"after an unknown kid", e2, "no-such-kid", tokend.ECONFLICT},
		{"after the latest", e2, e1.ID, ""},
		{"after a stale kid", e3, e1.ID, tokend.ECONFLICT},
		{"after the latest again", e3, e2.ID, ""},
		{"after another line's latest", d1, e3.ID, tokend.ECONFLICT},
		{"first key of another line", d1, "", ""},
		{"with a used kid", reused, e3.ID, tokend.ECONFLICT},
	}
	for _, st := range steps {
		wantCode(t, s.AddKey(t.Context(), st.key, st.afterKid), st.want, "add key "+st.name)
	}
	for alg, want := range map[string][]*tokend.SigningKey{"ES256": {e1, e2, e3}, "EdDSA": {d1}} {
		if got := keysOf(t, s, alg); !slices.Equal(ids(got, keyID), ids(want, keyID)) {
			t.Errorf("%s line = %v, want %v", alg, ids(got, keyID), ids(want, keyID))
		}
	}
}

func testKeyList(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	keys, err := s.ListKeys(t.Context())
	must(t, err, "list keys")
	if len(keys) != 0 {
		t.Fatalf("ListKeys of an empty store = %v, want none", ids(keys, keyID))
	}
	// Lines interleaved, so that grouping must come from the store.
	want := map[string][]*tokend.SigningKey{}
	byID := map[string]*tokend.SigningKey{}
	for _, alg := range []string{"RS256", "ES256", "EdDSA", "ES256", "RS256", "ES256", "RS512", "EdDSA"} {
		line := want[alg]
		after := ""
		if len(line) > 0 {
			after = line[len(line)-1].ID
		}
		k := addKey(t, s, newKey(alg), after)
		want[alg] = append(line, k)
		byID[k.ID] = k
	}
	keys, err = s.ListKeys(t.Context())
	must(t, err, "list keys")
	if len(keys) != len(byID) {
		t.Fatalf("ListKeys returned %d keys, want %d", len(keys), len(byID))
	}
	got := map[string][]*tokend.SigningKey{}
	for i, k := range keys {
		if i > 0 && keys[i-1].Alg != k.Alg && got[k.Alg] != nil {
			t.Fatalf("ListKeys does not group keys by alg: %s appears again at %d", k.Alg, i)
		}
		got[k.Alg] = append(got[k.Alg], k)
		if byID[k.ID] == nil {
			t.Fatalf("ListKeys returned unknown key %s", k.ID)
		}
		wantEqual(t, "listed key", k, byID[k.ID])
	}
	for alg, line := range want {
		if g, w := ids(got[alg], keyID), ids(line, keyID); !slices.Equal(g, w) {
			t.Errorf("%s line = %v, want %v (oldest first)", alg, g, w)
		}
	}
}

func testKeyRevoke(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	k1 := addKey(t, s, newKey("ES256"), "")
	k2 := addKey(t, s, newKey("ES256"), k1.ID)
	at := now()
	must(t, s.RevokeKey(t.Context(), k1.ID, at), "revoke key")
	k1.RevokedAt = at
	line := keysOf(t, s, "ES256")
	if len(line) != 2 {
		t.Fatalf("ES256 line = %v, want 2 keys", ids(line, keyID))
	}
	wantEqual(t, "revoked key", line[0], k1)
	wantEqual(t, "other key", line[1], k2)

	wantCode(t, s.RevokeKey(t.Context(), k1.ID, at.Add(time.Minute)), tokend.ENOTFOUND, "revoke a revoked key")
	wantEqual(t, "key revoked twice", keysOf(t, s, "ES256")[0], k1)
	wantCode(t, s.RevokeKey(t.Context(), "no-such-kid", at), tokend.ENOTFOUND, "revoke an unknown key")
}

func testKeyConcurrentRotation(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	first := addKey(t, s, newKey("ES256"), "")
	const n = 20
	errs := make([]error, n)
	candidates := make([]*tokend.SigningKey, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		candidates[i] = newKey("ES256")
		wg.Go(func() {
			<-start
			errs[i] = s.AddKey(t.Context(), candidates[i], first.ID)
		})
	}
	close(start)
	wg.Wait()
	var winner *tokend.SigningKey
	for i, err := range errs {
		switch tokend.ErrorCode(err) {
		case "":
			if winner != nil {
				t.Fatalf("AddKey succeeded for both %s and %s after the same kid", winner.ID, candidates[i].ID)
			}
			winner = candidates[i]
		case tokend.ECONFLICT:
		default:
			t.Fatalf("AddKey %d: %v, want nil or ECONFLICT", i, err)
		}
	}
	if winner == nil {
		t.Fatal("no AddKey succeeded")
	}
	if got, want := ids(keysOf(t, s, "ES256"), keyID), []string{first.ID, winner.ID}; !slices.Equal(got, want) {
		t.Fatalf("ES256 line = %v, want %v", got, want)
	}
}

// Sessions.

func testSessionRoundTrip(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("shop"))
	u := createUser(t, s, newUser("alice", ""))
	at := now()
	tests := []struct {
		name    string
		session *tokend.Session
	}{
		{"fresh", newSession(u.ID, c.ID, at)},
		{"rotated and revoked, no client", &tokend.Session{
			ID:           newID(),
			UserID:       u.ID,
			Scope:        "read write",
			Dialect:      "atoti",
			Counter:      7,
			RotatedAt:    at.Add(-time.Minute),
			CreatedAt:    at.Add(-time.Hour),
			ExpiresAt:    at.Add(time.Hour),
			RevokedAt:    at,
			RevokeReason: "logout",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			createSession(t, s, tc.session)
			wantEqual(t, "SessionByID", getSession(t, s, tc.session.ID), tc.session)
		})
	}
	t.Run("duplicate id", func(t *testing.T) {
		dup := newSession(u.ID, c.ID, at)
		dup.ID = tests[0].session.ID
		wantCode(t, s.CreateSession(t.Context(), dup), tokend.ECONFLICT, "create session with a used id")
	})
	t.Run("unknown id", func(t *testing.T) {
		_, err := s.SessionByID(t.Context(), newID())
		wantCode(t, err, tokend.ENOTFOUND, "session by unknown id")
	})
}

func testSessionAdvance(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	u := createUser(t, s, newUser("alice", ""))
	at := now()
	tests := []struct {
		name  string
		setup func(se *tokend.Session)
		from  int64
		want  bool
	}{
		{"at from", nil, 3, true},
		{"stale from", nil, 2, false},
		{"from ahead", nil, 4, false},
		{"revoked", func(se *tokend.Session) { se.RevokedAt, se.RevokeReason = at.Add(-time.Second), "logout" }, 3, false},
		{"expires at the time", func(se *tokend.Session) { se.ExpiresAt = at }, 3, false},
		{"expired", func(se *tokend.Session) { se.ExpiresAt = at.Add(-time.Microsecond) }, 3, false},
		{"expires just after", func(se *tokend.Session) { se.ExpiresAt = at.Add(time.Microsecond) }, 3, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			se := newSession(u.ID, "", at.Add(-time.Hour))
			se.Counter = 3
			if tc.setup != nil {
				tc.setup(se)
			}
			createSession(t, s, se)
			ok, err := s.AdvanceSession(t.Context(), se.ID, tc.from, at)
			must(t, err, "advance session")
			if ok != tc.want {
				t.Errorf("AdvanceSession(from %d) = %v, want %v", tc.from, ok, tc.want)
			}
			if tc.want {
				se.Counter, se.RotatedAt = tc.from+1, at
			}
			wantEqual(t, "session after AdvanceSession", getSession(t, s, se.ID), se)
		})
	}
}

func testSessionAdvanceInSequence(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	u := createUser(t, s, newUser("alice", ""))
	start := now()
	se := createSession(t, s, newSession(u.ID, "", start))
	steps := []struct {
		from int64
		want bool
	}{{0, true}, {0, false}, {1, true}, {2, true}, {1, false}, {3, true}}
	for i, st := range steps {
		at := start.Add(time.Duration(i+1) * time.Second)
		ok, err := s.AdvanceSession(t.Context(), se.ID, st.from, at)
		must(t, err, "advance session")
		if ok != st.want {
			t.Fatalf("step %d: AdvanceSession(from %d) = %v, want %v", i, st.from, ok, st.want)
		}
		if ok {
			se.Counter, se.RotatedAt = st.from+1, at
		}
		wantEqual(t, fmt.Sprintf("session after step %d", i), getSession(t, s, se.ID), se)
	}
}

func testSessionConcurrentAdvance(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	u := createUser(t, s, newUser("alice", ""))
	at := now()
	se := createSession(t, s, newSession(u.ID, "", at.Add(-time.Minute)))
	const n = 50
	won := make([]bool, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			won[i], errs[i] = s.AdvanceSession(t.Context(), se.ID, 0, at)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		must(t, err, fmt.Sprintf("advance session %d", i))
	}
	if winners := len(slices.DeleteFunc(won, func(w bool) bool { return !w })); winners != 1 {
		t.Fatalf("%d of %d concurrent AdvanceSession calls won, want exactly 1", winners, n)
	}
	se.Counter, se.RotatedAt = 1, at
	wantEqual(t, "session after concurrent AdvanceSession", getSession(t, s, se.ID), se)
}

func testSessionRevoke(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	u := createUser(t, s, newUser("alice", ""))
	start := now()
	se := createSession(t, s, newSession(u.ID, "", start.Add(-time.Minute)))
	other := createSession(t, s, newSession(u.ID, "", start.Add(-time.Minute)))

	must(t, s.RevokeSession(t.Context(), se.ID, start, "logout"), "revoke session")
	se.RevokedAt, se.RevokeReason = start, "logout"
	got := getSession(t, s, se.ID)
	wantEqual(t, "revoked session", got, se)
	if got.Live(start) {
		t.Errorf("revoked session is live")
	}

	must(t, s.RevokeSession(t.Context(), se.ID, start.Add(time.Minute), "reuse detected"), "revoke session again")
	wantEqual(t, "session revoked twice (first revocation kept)", getSession(t, s, se.ID), se)
	wantEqual(t, "other session", getSession(t, s, other.ID), other)

	must(t, s.RevokeSession(t.Context(), newID(), start, "logout"), "revoke an unknown session")
}

// Revoked access tokens.

func testTokenRevoke(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	jti := uuid.NewString()
	revoked := func(jti string) bool { return tokenStored(t, s, jti) }
	if revoked(jti) {
		t.Fatal("revoked before RevokeToken")
	}
	exp := now().Add(time.Hour)
	must(t, s.RevokeToken(t.Context(), jti, exp), "revoke token")
	must(t, s.RevokeToken(t.Context(), jti, exp.Add(time.Minute)), "revoke token again")
	if !revoked(jti) {
		t.Error("not revoked after RevokeToken")
	}
	if revoked(uuid.NewString()) {
		t.Error("an unknown jti is revoked")
	}
}

// tokenStored reports whether the store holds a revocation of jti, expired
// or not (Revoked at the zero time lists every row).
func tokenStored(t *testing.T, s tokend.Store, jti string) bool {
	t.Helper()
	tokens, _, err := s.Revoked(t.Context(), time.Time{})
	must(t, err, "revoked")
	return slices.Contains(tokens, jti)
}

func testRevokedListing(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	t0 := now()
	_, before, err := s.Changes(ctx, 0)
	must(t, err, "changes")
	live, old := uuid.NewString(), uuid.NewString()
	must(t, s.RevokeToken(ctx, live, t0.Add(time.Hour)), "revoke token")
	must(t, s.RevokeToken(ctx, old, t0.Add(-time.Minute)), "revoke expired token")
	must(t, s.RevokeToken(ctx, live, t0.Add(time.Hour)), "revoke token again")
	changes, _, err := s.Changes(ctx, before)
	must(t, err, "changes")
	tokenChanges := 0
	for _, c := range changes {
		if c.Kind == tokend.ChangeToken {
			tokenChanges++
			if c.Ref != live && c.Ref != old {
				t.Errorf("token change with ref %q", c.Ref)
			}
		}
	}
	if tokenChanges != 2 {
		t.Errorf("%d token changes, want 2 (one per token first revoked)", tokenChanges)
	}

	u := &tokend.User{ID: uuid.NewString(), Username: "rv", CreatedAt: t0}
	must(t, s.CreateUser(ctx, u), "create user")
	mk := func(exp time.Time) *tokend.Session {
		se := &tokend.Session{ID: uuid.NewString(), UserID: u.ID, RotatedAt: t0, CreatedAt: t0, ExpiresAt: exp}
		must(t, s.CreateSession(ctx, se), "create session")
		return se
	}
	revokedLive, revokedOld, liveSession := mk(t0.Add(time.Hour)), mk(t0.Add(time.Second)), mk(t0.Add(time.Hour))
	must(t, s.RevokeSession(ctx, revokedLive.ID, t0, "test"), "revoke session")
	must(t, s.RevokeSession(ctx, revokedOld.ID, t0, "test"), "revoke session")

	tokens, sessions, err := s.Revoked(ctx, t0.Add(2*time.Second))
	must(t, err, "revoked")
	if len(tokens) != 1 || tokens[0] != live {
		t.Errorf("revoked tokens %v, want [%s]", tokens, live)
	}
	// A revoked session that expired is listed too: an access token of
	// it may still be alive (PurgeRevokedSessions decides when it goes).
	slices.Sort(sessions)
	if want := slices.Sorted(slices.Values([]string{revokedLive.ID, revokedOld.ID})); !slices.Equal(sessions, want) {
		t.Errorf("revoked sessions %v, want %v (not %s, live)", sessions, want, liveSession.ID)
	}
}

// Secret.

func testSecretCreatedOnce(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	gen := func(v string) func() ([]byte, error) {
		return func() ([]byte, error) { return []byte(v), nil }
	}
	steps := []struct {
		name, gen, want string
	}{
		{"pepper", "first\x00\xff", "first\x00\xff"},
		{"pepper", "second", "first\x00\xff"},
		{"other", "third", "third"},
		{"pepper", "fourth", "first\x00\xff"},
		{"other", "fifth", "third"},
	}
	for i, st := range steps {
		got, err := s.Secret(t.Context(), st.name, gen(st.gen))
		must(t, err, "secret "+st.name)
		if string(got) != st.want {
			t.Errorf("step %d: Secret(%q) = %q, want %q", i, st.name, got, st.want)
		}
	}
}

func testSecretConcurrent(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	const n = 10
	got := make([][]byte, n)
	errs := make([]error, n)
	start := make(chan struct{})
	// Each gen waits (briefly: a store may well call gen only once) for the
	// others, so that every caller has its own candidate before any is stored.
	var (
		mu      sync.Mutex
		called  int
		allDone = make(chan struct{})
	)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.Secret(t.Context(), "pepper", func() ([]byte, error) {
				mu.Lock()
				if called++; called == n {
					close(allDone)
				}
				mu.Unlock()
				select {
				case <-allDone:
				case <-time.After(100 * time.Millisecond):
				}
				return []byte(fmt.Sprintf("generated by %d", i)), nil
			})
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		must(t, errs[i], fmt.Sprintf("secret %d", i))
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("concurrent Secret calls returned %q and %q", got[0], got[i])
		}
	}
	if !strings.HasPrefix(string(got[0]), "generated by ") {
		t.Fatalf("Secret = %q, not what any gen returned", got[0])
	}
	later, err := s.Secret(t.Context(), "pepper", func() ([]byte, error) { return []byte("late"), nil })
	must(t, err, "secret after the race")
	if !bytes.Equal(later, got[0]) {
		t.Fatalf("Secret after the race = %q, want %q", later, got[0])
	}
}

// Changes.

func testChangesRecorded(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	at := now()
	c := newClient("shop")
	alice, bob := newUser("alice", ""), newUser("bob", "")
	s1, s2, s3, s4 := newSession(alice.ID, c.ID, at), newSession(alice.ID, "", at), newSession(alice.ID, c.ID, at), newSession(bob.ID, c.ID, at)
	k1, k2 := newKey("ES256"), newKey("ES256")
	dupUser := newUser("alice", "")
	dupClient := newClient("again")
	dupClient.ID = c.ID

	type change = tokend.Change
	user := func(u *tokend.User) change { return change{Kind: tokend.ChangeUser, Ref: u.ID} }
	client := change{Kind: tokend.ChangeClient, Ref: c.ID}
	session := func(se *tokend.Session) change { return change{Kind: tokend.ChangeSession, Ref: se.ID} }
	key := func(k *tokend.SigningKey) change { return change{Kind: tokend.ChangeKey, Ref: k.ID} }

	// Steps run in order on one store; each lists the changes it records,
	// in any order (only changes of different calls are ordered).
	steps := []struct {
		name    string
		do      func() error
		wantErr string
		want    []change
	}{
		{"CreateClient", func() error { return s.CreateClient(ctx, c) }, "", []change{client}},
		{"CreateUser", func() error { return s.CreateUser(ctx, alice) }, "", []change{user(alice)}},
		{"CreateUser other", func() error { return s.CreateUser(ctx, bob) }, "", []change{user(bob)}},
		{"CreateSession", func() error {
			for _, se := range []*tokend.Session{s1, s2, s3, s4} {
				if err := s.CreateSession(ctx, se); err != nil {
					return err
				}
			}
			return nil
		}, "", nil},
		{"AdvanceSession", func() error { _, err := s.AdvanceSession(ctx, s1.ID, 0, at); return err }, "", nil},
		{"TouchLogin", func() error { return s.TouchLogin(ctx, alice.ID, at) }, "", nil},
		{"TouchRefresh", func() error { return s.TouchRefresh(ctx, alice.ID, at) }, "", nil},
		{"SetUserPassword", func() error { return s.SetUserPassword(ctx, alice.ID, "new hash") }, "", []change{user(alice)}},
		{"RevokeSession", func() error { return s.RevokeSession(ctx, s2.ID, at, "logout") }, "", []change{session(s2)}},
		{"RevokeSession again", func() error { return s.RevokeSession(ctx, s2.ID, at, "logout") }, "", nil},
		{"RevokeSession unknown", func() error { return s.RevokeSession(ctx, newID(), at, "logout") }, "", nil},
		{"DisableUser", func() error { return s.DisableUser(ctx, alice.ID, at) }, "", []change{user(alice), session(s1), session(s3)}},
		{"SetUserPasswordEndSessions", func() error { return s.SetUserPasswordEndSessions(ctx, bob.ID, "h", at) }, "", []change{user(bob), session(s4)}},
		{"SetUserPasswordEndSessions unknown", func() error { return s.SetUserPasswordEndSessions(ctx, newID(), "h", at) }, tokend.ENOTFOUND, nil},
		{"SetClientSecret", func() error { return s.SetClientSecret(ctx, c.ID, randomBytes(32), at.Add(time.Hour)) }, "", []change{client}},
		{"DisableClient", func() error { return s.DisableClient(ctx, c.ID) }, "", []change{client}},
		{"AddKey", func() error { return s.AddKey(ctx, k1, "") }, "", []change{key(k1)}},
		{"AddKey lost", func() error { return s.AddKey(ctx, k2, "") }, tokend.ECONFLICT, nil},
		{"AddKey rotation", func() error { return s.AddKey(ctx, k2, k1.ID) }, "", []change{key(k2)}},
		{"RevokeKey", func() error { return s.RevokeKey(ctx, k1.ID, at) }, "", []change{key(k1)}},
		{"RevokeKey again", func() error { return s.RevokeKey(ctx, k1.ID, at) }, tokend.ENOTFOUND, nil},
		{"CreateUser duplicate", func() error { return s.CreateUser(ctx, dupUser) }, tokend.ECONFLICT, nil},
		{"CreateClient duplicate", func() error { return s.CreateClient(ctx, dupClient) }, tokend.ECONFLICT, nil},
		{"SetUserPassword unknown", func() error { return s.SetUserPassword(ctx, newID(), "x") }, tokend.ENOTFOUND, nil},
		{"DisableUser unknown", func() error { return s.DisableUser(ctx, newID(), at) }, tokend.ENOTFOUND, nil},
		{"DisableClient unknown", func() error { return s.DisableClient(ctx, uuid.NewString()) }, tokend.ENOTFOUND, nil},
	}
	byKindRef := func(a, b change) int { return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Ref, b.Ref)) }
	var last int64
	for _, st := range steps {
		wantCode(t, st.do(), st.wantErr, st.name)
		got, latest := changesAfter(t, s, last)
		for _, ch := range got {
			if ch.Seq <= last {
				t.Fatalf("%s: change seq %d not after %d", st.name, ch.Seq, last)
			}
			last = ch.Seq
		}
		if latest != last {
			t.Fatalf("%s: Changes latest seq = %d, want %d", st.name, latest, last)
		}
		for i := range got {
			got[i].Seq = 0
		}
		slices.SortFunc(got, byKindRef)
		want := slices.SortedFunc(slices.Values(st.want), byKindRef)
		if !slices.Equal(got, want) {
			t.Errorf("%s recorded changes %v, want %v", st.name, got, want)
		}
	}
}

func testChangesAfter(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	got, latest := changesAfter(t, s, 0)
	if len(got) != 0 || latest != 0 {
		t.Fatalf("Changes(0) of an empty store = %v, %d; want none, 0", got, latest)
	}
	var users []*tokend.User
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		users = append(users, createUser(t, s, newUser(name, "")))
	}
	all, latest := changesAfter(t, s, 0)
	if len(all) != len(users) {
		t.Fatalf("Changes(0) = %v, want %d changes", all, len(users))
	}
	for i, ch := range all {
		if ch.Kind != tokend.ChangeUser || ch.Ref != users[i].ID {
			t.Errorf("change %d = %+v, want user %s (oldest first)", i, ch, users[i].ID)
		}
		if i > 0 && ch.Seq <= all[i-1].Seq {
			t.Errorf("change seqs not increasing: %d after %d", ch.Seq, all[i-1].Seq)
		}
	}
	if latest != all[len(all)-1].Seq {
		t.Errorf("Changes(0) latest = %d, want %d", latest, all[len(all)-1].Seq)
	}
	for i := range all {
		after := all[i].Seq
		got, gotLatest := changesAfter(t, s, after)
		if !slices.Equal(got, all[i+1:]) {
			t.Errorf("Changes(%d) = %v, want %v", after, got, all[i+1:])
		}
		if gotLatest != latest {
			t.Errorf("Changes(%d) latest = %d, want %d", after, gotLatest, latest)
		}
	}
}

// Purge.

func testPurgeExpired(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	u := createUser(t, s, newUser("alice", ""))
	at := now()
	expired := newSession(u.ID, "", at.Add(-48*time.Hour))
	expired.ExpiresAt = at.Add(-time.Hour)
	revokedExpired := newSession(u.ID, "", at.Add(-48*time.Hour))
	revokedExpired.ExpiresAt, revokedExpired.RevokedAt, revokedExpired.RevokeReason = at.Add(-time.Second), at.Add(-time.Hour), "logout"
	live := newSession(u.ID, "", at.Add(-time.Hour))
	revokedLive := newSession(u.ID, "", at.Add(-time.Hour))
	revokedLive.RevokedAt, revokedLive.RevokeReason = at.Add(-time.Minute), "logout"
	for _, se := range []*tokend.Session{expired, revokedExpired, live, revokedLive} {
		createSession(t, s, se)
	}
	expiredJTI, liveJTI := uuid.NewString(), uuid.NewString()
	must(t, s.RevokeToken(t.Context(), expiredJTI, at.Add(-time.Microsecond)), "revoke token")
	must(t, s.RevokeToken(t.Context(), liveJTI, at.Add(time.Hour)), "revoke token")

	must(t, s.Purge(t.Context(), at, 24*time.Hour), "purge")

	_, err := s.SessionByID(t.Context(), expired.ID)
	wantCode(t, err, tokend.ENOTFOUND, "session that expired before the purge")
	// A revoked session stays, expired or not: PurgeRevokedSessions's.
	for _, se := range []*tokend.Session{live, revokedLive, revokedExpired} {
		wantEqual(t, "session kept by the purge", getSession(t, s, se.ID), se)
	}
	for jti, want := range map[string]bool{expiredJTI: false, liveJTI: true} {
		if got := tokenStored(t, s, jti); got != want {
			t.Errorf("revocation of %s kept by the purge = %v, want %v", jti, got, want)
		}
	}
	wantEqual(t, "user", getUser(t, s, u.ID), u)
}

// PurgeRevokedSessions forgets exactly the revoked sessions that expired
// before the cut-off, and Revoked stops listing them.
func testPurgeRevokedSessions(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	u := createUser(t, s, newUser("alice", ""))
	at := now()
	mk := func(expires time.Time, revoked bool) *tokend.Session {
		se := newSession(u.ID, "", at.Add(-48*time.Hour))
		se.ExpiresAt = expires
		if revoked {
			se.RevokedAt, se.RevokeReason = at.Add(-47*time.Hour), "logout"
		}
		return createSession(t, s, se)
	}
	cut := at.Add(-time.Hour)
	old := mk(cut.Add(-time.Microsecond), true)
	recent := mk(cut.Add(time.Microsecond), true)
	liveRevoked := mk(at.Add(time.Hour), true)
	expiredNotRevoked := mk(cut.Add(-time.Minute), false)

	must(t, s.PurgeRevokedSessions(t.Context(), cut), "purge revoked sessions")

	_, err := s.SessionByID(t.Context(), old.ID)
	wantCode(t, err, tokend.ENOTFOUND, "revoked session that expired before the cut-off")
	for _, se := range []*tokend.Session{recent, liveRevoked, expiredNotRevoked} {
		wantEqual(t, "session kept", getSession(t, s, se.ID), se)
	}
	_, sessions, err := s.Revoked(t.Context(), at)
	must(t, err, "revoked")
	slices.Sort(sessions)
	if want := slices.Sorted(slices.Values([]string{recent.ID, liveRevoked.ID})); !slices.Equal(sessions, want) {
		t.Errorf("revoked sessions %v, want %v", sessions, want)
	}
}

func testPurgeChanges(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	for _, name := range []string{"alice", "bob", "carol"} {
		createUser(t, s, newUser(name, ""))
	}
	before, latest := changesAfter(t, s, 0)

	// Changes younger than keepChanges stay.
	must(t, s.Purge(t.Context(), now(), time.Hour), "purge recent changes")
	if got, gotLatest := changesAfter(t, s, 0); !slices.Equal(got, before) || gotLatest != latest {
		t.Fatalf("after purging nothing: Changes(0) = %v, %d; want %v, %d", got, gotLatest, before, latest)
	}

	// An hour later every change is old, but the newest stays so that the
	// latest seq never goes backwards.
	must(t, s.Purge(t.Context(), now().Add(time.Hour), 0), "purge old changes")
	got, gotLatest := changesAfter(t, s, 0)
	if want := before[len(before)-1:]; !slices.Equal(got, want) || gotLatest != latest {
		t.Fatalf("after purging: Changes(0) = %v, %d; want %v, %d", got, gotLatest, want, latest)
	}
	if got, gotLatest := changesAfter(t, s, latest); len(got) != 0 || gotLatest != latest {
		t.Fatalf("after purging: Changes(%d) = %v, %d; want none, %d", latest, got, gotLatest, latest)
	}
	must(t, s.Purge(t.Context(), now().Add(2*time.Hour), 0), "purge again")
	if got := latestSeq(t, s); got != latest {
		t.Fatalf("after a second purge the latest seq = %d, want %d", got, latest)
	}

	u := createUser(t, s, newUser("dave", ""))
	got, gotLatest = changesAfter(t, s, latest)
	if len(got) != 1 || got[0].Ref != u.ID || got[0].Seq <= latest || gotLatest != got[0].Seq {
		t.Fatalf("change after purge: Changes(%d) = %v, %d; want one change of user %s with seq > %d", latest, got, gotLatest, u.ID, latest)
	}
}

// Ping.

func testPing(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	must(t, s.Ping(t.Context()), "ping")
}

func testFailuresCountAndWindow(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	if f, err := s.Failures(ctx, "k"); err != nil || f.Count != 0 || !f.Since.IsZero() {
		t.Fatalf("an unknown counter: %+v %v", f, err)
	}
	for i := 1; i <= 3; i++ {
		f, err := s.RecordFailure(ctx, "k", t0.Add(time.Duration(i)*time.Second), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if f.Count != i || !f.Since.Equal(t0.Add(time.Second)) || !f.Last.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("failure %d: %+v", i, f)
		}
	}
	got, err := s.Failures(ctx, "k")
	if err != nil || got.Count != 3 || !got.Last.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("Failures: %+v %v", got, err)
	}
	if other, _ := s.Failures(ctx, "other"); other.Count != 0 {
		t.Fatal("counters are independent")
	}
	// Past the window the counter starts again.
	later := t0.Add(2 * time.Minute)
	f, err := s.RecordFailure(ctx, "k", later, time.Minute)
	if err != nil || f.Count != 1 || !f.Since.Equal(later) {
		t.Fatalf("after the window: %+v %v", f, err)
	}
	if err := s.ResetFailures(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.Failures(ctx, "k"); f.Count != 0 {
		t.Fatalf("after reset: %+v", f)
	}
	if err := s.ResetFailures(ctx, "never-seen"); err != nil {
		t.Fatalf("resetting an unknown counter: %v", err)
	}
	// Purge forgets counters idle for a day.
	if _, err := s.RecordFailure(ctx, "old", t0.Add(-48*time.Hour), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordFailure(ctx, "fresh", t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.Failures(ctx, "old"); f.Count != 0 {
		t.Fatal("an idle counter survived the purge")
	}
	if f, _ := s.Failures(ctx, "fresh"); f.Count != 1 {
		t.Fatal("a fresh counter was purged")
	}
}

func testFailuresConcurrent(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	now := time.Now().UTC()
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]bool{}
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := s.RecordFailure(ctx, "ip:203.0.113.9", now, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[f.Count] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if f, _ := s.Failures(ctx, "ip:203.0.113.9"); f.Count != 40 {
		t.Fatalf("40 concurrent failures counted as %d", f.Count)
	}
	if len(seen) != 40 {
		t.Fatalf("each increment must return its own count; saw %d distinct", len(seen))
	}
}

func testAuditAppendAndList(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	if got, err := s.ListAudit(ctx, tokend.AuditFilter{}); err != nil || len(got) != 0 {
		t.Fatalf("empty trail: %v %v", got, err)
	}
	if err := s.AppendAudit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	events := []tokend.AuditEvent{
		{At: t0, Event: "login.failed", Subject: "alice", Dialect: "oauth", IP: "192.0.2.1", Outcome: "failure"},
		{At: t0.Add(time.Second), Event: "token.issued", Subject: "alice", ClientID: "c1", Dialect: "oauth", IP: "192.0.2.1", Outcome: "success", Detail: "grant=password"},
		{At: t0.Add(2 * time.Second), Event: "token.issued", Subject: "svc", ClientID: "svc", Dialect: "taiki", Outcome: "success"},
	}
	if err := s.AppendAudit(ctx, events); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListAudit(ctx, tokend.AuditFilter{})
	if err != nil || len(all) != 3 {
		t.Fatalf("list: %v %v", all, err)
	}
	for i, e := range all {
		want := events[i]
		want.Seq, want.Count = e.Seq, 1 // a single event counts once
		if e.Seq == 0 || !e.At.Equal(want.At) {
			t.Fatalf("event %d: %+v", i, e)
		}
		e.At, want.At = time.Time{}, time.Time{}
		if e != want {
			t.Fatalf("event %d: got %+v, want %+v", i, e, want)
		}
	}
	if all[0].Seq >= all[1].Seq {
		t.Fatal("seqs must grow")
	}
	if got, _ := s.ListAudit(ctx, tokend.AuditFilter{Subject: "alice"}); len(got) != 2 {
		t.Fatalf("by subject: %d", len(got))
	}
	if got, _ := s.ListAudit(ctx, tokend.AuditFilter{Since: t0.Add(time.Second)}); len(got) != 2 || got[0].Event != "token.issued" {
		t.Fatalf("since: %v", got)
	}
	if got, _ := s.ListAudit(ctx, tokend.AuditFilter{Limit: 1}); len(got) != 1 || got[0].Event != "login.failed" {
		t.Fatalf("limit: %v", got)
	}
}
