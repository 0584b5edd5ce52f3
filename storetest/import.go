package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// Store.ImportUsers: users brought from another system, matched by id or
// by username, created, updated or left alone, with conflicts as outcomes.

// imported is an ImportUser of a user whose id the source gave (byID) or
// did not.
func imported(id, username string, byID bool) tokend.ImportUser {
	at := now()
	u := tokend.User{
		ID: id, Username: username, PasswordHash: "pbkdf2_sha256$260000$salt$" + username,
		Roles: []string{"reader"}, Claims: map[string]any{"dept": "ops"},
		CreatedAt: at.Add(-400 * 24 * time.Hour), LastLoginAt: at.Add(-2 * time.Hour),
	}
	if !byID {
		u.ID = newID()
	}
	return tokend.ImportUser{User: u, ByID: byID, At: at, Given: tokend.ImportPassword | tokend.ImportRoles | tokend.ImportClaims | tokend.ImportCreatedAt | tokend.ImportLastLoginAt}
}

func importUsers(t *testing.T, s tokend.Store, batch ...tokend.ImportUser) []tokend.ImportOutcome {
	t.Helper()
	out, err := s.ImportUsers(t.Context(), batch)
	must(t, err, "import users")
	if len(out) != len(batch) {
		t.Fatalf("%d outcomes for %d users", len(out), len(batch))
	}
	return out
}

func wantOutcomes(t *testing.T, got []tokend.ImportOutcome, want ...string) {
	t.Helper()
	var results []string
	for _, o := range got {
		results = append(results, o.Result)
	}
	if !slices.Equal(results, want) {
		t.Fatalf("outcomes %v, want %v", results, want)
	}
}

// changesSince returns the changes recorded after seq, as "kind ref".
func changesSince(t *testing.T, s tokend.Store, seq int64) ([]string, int64) {
	t.Helper()
	changes, latest, err := s.Changes(t.Context(), seq)
	must(t, err, "changes")
	var out []string
	for _, c := range changes {
		out = append(out, c.Kind+" "+c.Ref)
	}
	return out, latest
}

func testImportCreated(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	_, seq := changesSince(t, s, 0)
	batch := []tokend.ImportUser{imported("42", "alice", true), imported("", "bob", false), imported(newID(), "carol", true)}
	batch[2].User.Disabled, batch[2].User.Roles, batch[2].User.Claims = true, nil, nil
	out := importUsers(t, s, batch...)
	wantOutcomes(t, out, tokend.ImportCreated, tokend.ImportCreated, tokend.ImportCreated)
	var want []string
	for i, in := range batch {
		if out[i].ID != in.User.ID {
			t.Errorf("user %d: outcome id %q, want %q", i, out[i].ID, in.User.ID)
		}
		got := getUser(t, s, in.User.ID)
		wantEqual(t, in.User.Username, got, &in.User)
		if got.Version != 1 {
			t.Errorf("%s: version %d, want 1", in.User.Username, got.Version)
		}
		byName, err := s.UserByName(t.Context(), in.User.Username)
		must(t, err, "user by name")
		wantEqual(t, in.User.Username+" by name", byName, &in.User)
		want = append(want, tokend.ChangeUser+" "+in.User.ID)
	}
	got, _ := changesSince(t, s, seq)
	if !slices.Equal(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
}

func testImportExists(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	first := []tokend.ImportUser{imported("42", "alice", true), imported("", "bob", false)}
	importUsers(t, s, first...)
	_, seq := changesSince(t, s, 0)
	// Again, with other data: matched by id, or by username, and left alone.
	again := []tokend.ImportUser{imported("42", "alice-renamed", true), imported("", "bob", false)}
	again[0].User.Roles, again[1].User.Roles = []string{"admin"}, []string{"admin"}
	out := importUsers(t, s, again...)
	wantOutcomes(t, out, tokend.ImportExists, tokend.ImportExists)
	for i, in := range first {
		if out[i].ID != in.User.ID {
			t.Errorf("user %d: outcome id %q, want the stored user's %q", i, out[i].ID, in.User.ID)
		}
		got := getUser(t, s, in.User.ID)
		wantEqual(t, in.User.Username, got, &in.User)
		if got.Version != 1 {
			t.Errorf("%s: version %d after a skipped import", in.User.Username, got.Version)
		}
	}
	if got, _ := changesSince(t, s, seq); len(got) > 0 {
		t.Errorf("a skipped import recorded changes %v", got)
	}
	// One batch that names a user twice: created, then found.
	out = importUsers(t, s, imported("", "dave", false), imported("", "dave", false), imported("7", "erin", true), imported("7", "erin", true))
	wantOutcomes(t, out, tokend.ImportCreated, tokend.ImportExists, tokend.ImportCreated, tokend.ImportExists)
	if out[1].ID != out[0].ID {
		t.Errorf("the second dave matched %q, not the first (%q)", out[1].ID, out[0].ID)
	}
}

func testImportUpdated(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	alice, bob := imported("42", "alice", true), imported("", "bob", false)
	importUsers(t, s, alice, bob)
	at := now()
	se := createSession(t, s, newSession("42", "", at))
	other := createSession(t, s, newSession(bob.User.ID, "", at))
	_, seq := changesSince(t, s, 0)

	// Roles and username change; no password given: the hash stays, and
	// so do the sessions.
	up := imported("42", "alice2", true)
	up.Update, up.Given, up.User.Roles = true, tokend.ImportRoles, []string{"admin", "reader"}
	bobUp := imported("", "bob", false)
	bobUp.Update, bobUp.User.Claims = true, map[string]any{"dept": "sales"}
	out := importUsers(t, s, up, bobUp)
	wantOutcomes(t, out, tokend.ImportUpdated, tokend.ImportUpdated)
	if out[1].ID != bob.User.ID {
		t.Errorf("bob updated as %q, want %q", out[1].ID, bob.User.ID)
	}
	want := alice.User
	want.Username, want.Roles = "alice2", []string{"admin", "reader"}
	got := getUser(t, s, "42")
	wantEqual(t, "updated alice", got, &want)
	if got.Version != 2 {
		t.Errorf("version %d after one update, want 2", got.Version)
	}
	if _, err := s.UserByName(t.Context(), "alice"); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Errorf("the old username still finds a user: %v", err)
	}
	if !getSession(t, s, se.ID).RevokedAt.IsZero() {
		t.Error("an update without a password ended the user's sessions")
	}
	if got := getUser(t, s, bob.User.ID); got.Claims["dept"] != "sales" || got.PasswordHash != bob.User.PasswordHash {
		t.Errorf("bob: claims %v", got.Claims)
	}
	changes, seq := changesSince(t, s, seq)
	if !slices.Equal(changes, []string{"user 42", "user " + bob.User.ID}) {
		t.Errorf("changes %v", changes)
	}

	// The same again: unchanged, nothing written.
	out = importUsers(t, s, up, bobUp)
	wantOutcomes(t, out, tokend.ImportUnchanged, tokend.ImportUnchanged)
	if getUser(t, s, "42").Version != 2 {
		t.Error("an unchanged update bumped the version")
	}
	if changes, _ := changesSince(t, s, seq); len(changes) > 0 {
		t.Errorf("an unchanged update recorded %v", changes)
	}

	// A new password hash ends the user's sessions (and only theirs), as
	// a password change does.
	pw := imported("42", "alice2", true)
	pw.Update, pw.Given, pw.User.PasswordHash = true, tokend.ImportPassword, "$2b$10$0123456789012345678901uABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
	pw.At = at.Add(time.Second)
	wantOutcomes(t, importUsers(t, s, pw), tokend.ImportUpdated)
	got = getUser(t, s, "42")
	if got.PasswordHash != pw.User.PasswordHash || !got.TokensNotBefore.Equal(pw.At) || slices.Equal(got.Roles, nil) {
		t.Errorf("after a password update: hash %.10q, TokensNotBefore %v (want %v), roles %v", got.PasswordHash, got.TokensNotBefore, pw.At, got.Roles)
	}
	if r := getSession(t, s, se.ID); r.RevokedAt.IsZero() || r.RevokeReason != "password changed" {
		t.Errorf("session after a password update: revoked at %v, reason %q", r.RevokedAt, r.RevokeReason)
	}
	if !getSession(t, s, other.ID).RevokedAt.IsZero() {
		t.Error("another user's session was revoked")
	}
	changes, _ = changesSince(t, s, seq)
	if !slices.Contains(changes, "session "+se.ID) || !slices.Contains(changes, "user 42") {
		t.Errorf("changes %v", changes)
	}

	// Disabling ends the sessions too.
	se2 := createSession(t, s, newSession(bob.User.ID, "", at))
	dis := imported("", "bob", false)
	dis.Update, dis.Given, dis.User.Disabled = true, tokend.ImportDisabled, true
	wantOutcomes(t, importUsers(t, s, dis), tokend.ImportUpdated)
	if !getUser(t, s, bob.User.ID).Disabled || getSession(t, s, se2.ID).RevokedAt.IsZero() {
		t.Error("an update that disables bob left him enabled or his session live")
	}
}

func testImportTaken(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("shop"))
	endUser := createUser(t, s, newUser("buyer", c.ID))
	importUsers(t, s, imported("42", "bob", true), imported("43", "carol", true))
	_, seq := changesSince(t, s, 0)

	gus := imported("gus", "gus", true)
	rename := imported("42", "carol", true) // carol is 43's
	rename.Update = true
	skipRename := imported("42", "carol", true) // no update: 42 exists, left alone
	out := importUsers(t, s,
		imported("44", "bob", true),         // bob is 42's
		imported("45", "dave", true),        // fine
		imported(c.ID, "erin", true),        // a client app's id
		imported(endUser.ID, "frank", true), // an end user's id
		rename, skipRename,
		imported("", "buyer", false), // the end user's name: no clash among users of no client
		// No string is one user's id and another's username.
		imported("bob", "frank", true), // bob is 42's username
		imported("", "43", false),      // 43 is carol's id
		gus,                            // the same user's: fine
	)
	wantOutcomes(t, out, tokend.ImportUsernameTaken, tokend.ImportCreated, tokend.ImportIDTaken, tokend.ImportIDTaken,
		tokend.ImportUsernameTaken, tokend.ImportExists, tokend.ImportCreated,
		tokend.ImportIDTaken, tokend.ImportUsernameTaken, tokend.ImportCreated)
	for _, i := range []int{0, 2, 3, 4, 7, 8} {
		if out[i].ID != "" {
			t.Errorf("outcome %d (%s) names id %q", i, out[i].Result, out[i].ID)
		}
	}
	if got := getUser(t, s, "42"); got.Username != "bob" || got.Version != 1 {
		t.Errorf("42 is %q at version %d after conflicts", got.Username, got.Version)
	}
	if got := getUser(t, s, endUser.ID); got.Username != "buyer" || got.ClientID != c.ID {
		t.Errorf("the end user became %+v", got)
	}
	if _, err := s.UserByID(t.Context(), "44"); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Errorf("user 44 exists after its username was taken: %v", err)
	}
	changes, _ := changesSince(t, s, seq)
	if len(changes) != 3 || changes[0] != "user 45" || changes[2] != "user gus" {
		t.Errorf("changes %v, want the three users created", changes)
	}
	gus.Update = true
	wantOutcomes(t, importUsers(t, s, gus), tokend.ImportUnchanged)
}

func testImportConcurrent(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	const workers, users = 4, 60
	var batch []tokend.ImportUser
	for i := range users {
		// Half by id, half by username.
		in := imported(fmt.Sprint(1000+i), fmt.Sprintf("user-%02d", i), i%2 == 0)
		batch = append(batch, in)
	}
	results := make([][]tokend.ImportOutcome, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each worker its own copy, in its own order of batches.
			mine := slices.Clone(batch)
			if w%2 == 1 {
				slices.Reverse(mine)
			}
			for i := 0; i < len(mine); i += 20 {
				out, err := s.ImportUsers(t.Context(), mine[i:i+20])
				if err != nil {
					errs[w] = err
					return
				}
				if w%2 == 1 {
					// Back in the order of batch.
					out = slices.Clone(out)
					slices.Reverse(out)
					results[w] = append(out, results[w]...)
				} else {
					results[w] = append(results[w], out...)
				}
			}
		}()
	}
	wg.Wait()
	for w, err := range errs {
		must(t, err, fmt.Sprintf("worker %d", w))
	}
	all, err := s.ListUsers(t.Context(), tokend.UserFilter{})
	must(t, err, "list users")
	if len(all) != users {
		t.Fatalf("%d users stored, want %d", len(all), users)
	}
	for i := range users {
		created, ids := 0, map[string]bool{}
		for w := range workers {
			o := results[w][i]
			switch o.Result {
			case tokend.ImportCreated:
				created++
			case tokend.ImportExists:
			default:
				t.Errorf("user %d, worker %d: %s", i, w, o.Result)
			}
			ids[o.ID] = true
		}
		if created != 1 || len(ids) != 1 {
			t.Errorf("user %d: created %d times, ids %v", i, created, ids)
		}
	}
}
