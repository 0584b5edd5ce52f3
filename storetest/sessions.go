package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

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
