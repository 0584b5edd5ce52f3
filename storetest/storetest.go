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
	"crypto/rand"
	"fmt"
	"reflect"
	"slices"
	"strings"
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

// Ping.

func testPing(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	must(t, s.Ping(t.Context()), "ping")
}
