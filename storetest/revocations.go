package storetest

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

// What the revocation feed reads (Store.RevokedTokens, RevokedSessions).

func testRevokedTokensWithExpiry(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	t0 := now()
	a, b, expired := uuid.NewString(), uuid.NewString(), uuid.NewString()
	must(t, s.RevokeToken(ctx, a, t0.Add(time.Hour)), "revoke a")
	must(t, s.RevokeToken(ctx, b, t0.Add(2*time.Hour)), "revoke b")
	must(t, s.RevokeToken(ctx, expired, t0.Add(-time.Second)), "revoke expired")
	byJTI := func(x, y tokend.RevokedToken) int { return cmp.Compare(x.JTI, y.JTI) }
	rt := func(jti string, exp time.Time) tokend.RevokedToken {
		return tokend.RevokedToken{JTI: jti, ExpiresAt: exp}
	}

	for _, tc := range []struct {
		name string
		jtis []string
		want []tokend.RevokedToken
	}{
		{"all", nil, []tokend.RevokedToken{rt(a, t0.Add(time.Hour)), rt(b, t0.Add(2*time.Hour))}},
		{"some", []string{b, expired, uuid.NewString()}, []tokend.RevokedToken{rt(b, t0.Add(2*time.Hour))}},
		{"none asked", []string{}, nil},
		{"unstorable key", []string{"bad\x00jti", a}, []tokend.RevokedToken{rt(a, t0.Add(time.Hour))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.RevokedTokens(ctx, t0, tc.jtis)
			must(t, err, "revoked tokens")
			slices.SortFunc(got, byJTI)
			want := slices.SortedFunc(slices.Values(tc.want), byJTI)
			if len(got) != len(want) {
				t.Fatalf("RevokedTokens = %v, want %v", got, want)
			}
			for i := range got {
				if got[i].JTI != want[i].JTI || !got[i].ExpiresAt.Equal(want[i].ExpiresAt) {
					t.Errorf("RevokedTokens[%d] = %v, want %v", i, got[i], want[i])
				}
			}
		})
	}

	t.Run("many", func(t *testing.T) {
		// More keys than one statement takes at once (SQLite chunks them).
		var jtis []string
		for range 1200 {
			jtis = append(jtis, uuid.NewString())
		}
		jtis = append(jtis, a)
		got, err := s.RevokedTokens(ctx, t0, jtis)
		must(t, err, "revoked tokens")
		if len(got) != 1 || got[0].JTI != a {
			t.Errorf("RevokedTokens of 1201 jtis = %v, want only %s", got, a)
		}
	})
}

func testRevokedSessionsWithTimes(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	t0 := now()
	u := createUser(t, s, newUser("alice", ""))
	old := createSession(t, s, newSession(u.ID, "", t0.Add(-2*time.Hour)))
	recent := createSession(t, s, newSession(u.ID, "", t0.Add(-time.Hour)))
	live := createSession(t, s, newSession(u.ID, "", t0))
	must(t, s.RevokeSession(ctx, old.ID, t0.Add(-time.Hour), "logout"), "revoke old")
	must(t, s.RevokeSession(ctx, recent.ID, t0.Add(-time.Minute), "logout"), "revoke recent")

	for _, tc := range []struct {
		name  string
		since time.Time
		ids   []string
		want  []*tokend.Session
		at    []time.Time
	}{
		{"all since zero", time.Time{}, nil, []*tokend.Session{old, recent}, []time.Time{t0.Add(-time.Hour), t0.Add(-time.Minute)}},
		{"since", t0.Add(-30 * time.Minute), nil, []*tokend.Session{recent}, []time.Time{t0.Add(-time.Minute)}},
		{"ids", time.Time{}, []string{old.ID, live.ID, newID()}, []*tokend.Session{old}, []time.Time{t0.Add(-time.Hour)}},
		{"ids and since", t0.Add(-30 * time.Minute), []string{old.ID, recent.ID}, []*tokend.Session{recent}, []time.Time{t0.Add(-time.Minute)}},
		{"none asked", time.Time{}, []string{}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.RevokedSessions(ctx, tc.since, tc.ids)
			must(t, err, "revoked sessions")
			slices.SortFunc(got, func(x, y tokend.RevokedSession) int { return x.RevokedAt.Compare(y.RevokedAt) })
			if len(got) != len(tc.want) {
				t.Fatalf("RevokedSessions = %v, want %d sessions", got, len(tc.want))
			}
			for i, se := range tc.want {
				g := got[i]
				if g.ID != se.ID || g.UserID != u.ID || !g.RevokedAt.Equal(tc.at[i]) || !g.ExpiresAt.Equal(se.ExpiresAt) {
					t.Errorf("RevokedSessions[%d] = %+v, want %s of %s revoked at %v expiring %v", i, g, se.ID, u.ID, tc.at[i], se.ExpiresAt)
				}
			}
		})
	}
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
