package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// StepRefresh: the whole refresh step (read session and user, rotate,
// record the refresh time) in one atomic call, following
// tokend.RefreshStep.Decide.

func testRefreshStepRule(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("shop"))
	at := now()
	const grace = 5 * time.Second
	tests := []struct {
		name        string
		session     func(se *tokend.Session)
		user        func(u *tokend.User) // nil: the user as newUser makes it
		noUser      bool                 // the session's user does not exist
		step        func(r *tokend.RefreshStep)
		advance     bool
		touch       bool
		wantRotated bool // when advance: the session's RotatedAt becomes the step's At
	}{
		{name: "current generation, rotation on", advance: true, touch: true},
		{name: "current generation, rotation off", step: func(r *tokend.RefreshStep) { r.Rotate = false }, touch: true},
		{name: "previous generation within grace", step: func(r *tokend.RefreshStep) { r.Counter = 2 }, touch: true},
		{name: "previous generation at the end of grace", session: func(se *tokend.Session) { se.RotatedAt = at.Add(-grace) },
			step: func(r *tokend.RefreshStep) { r.Counter = 2 }, touch: true},
		{name: "previous generation after grace", session: func(se *tokend.Session) { se.RotatedAt = at.Add(-grace - time.Microsecond) },
			step: func(r *tokend.RefreshStep) { r.Counter = 2 }},
		{name: "previous generation, no grace", step: func(r *tokend.RefreshStep) { r.Counter, r.Grace = 2, 0 }},
		{name: "previous generation, rotation off", step: func(r *tokend.RefreshStep) { r.Counter, r.Rotate = 2, false }},
		{name: "older generation", step: func(r *tokend.RefreshStep) { r.Counter = 1 }},
		{name: "generation ahead", step: func(r *tokend.RefreshStep) { r.Counter = 4 }},
		{name: "another client", step: func(r *tokend.RefreshStep) { r.ClientID = "" }},
		{name: "another dialect", step: func(r *tokend.RefreshStep) { r.Dialect = "atoti" }},
		{name: "scopes held", step: func(r *tokend.RefreshStep) { r.Scopes = []string{"write", "read"} }, advance: true, touch: true},
		{name: "a scope not held", step: func(r *tokend.RefreshStep) { r.Scopes = []string{"read", "admin"} }},
		{name: "a scope with bytes text cannot hold", step: func(r *tokend.RefreshStep) { r.Scopes = []string{"read\x00", "\xff"} }},
		{name: "user disabled", user: func(u *tokend.User) { u.Disabled = true }},
		{name: "password changed after the session began", user: func(u *tokend.User) { u.TokensNotBefore = at.Add(-time.Hour + time.Microsecond) }},
		{name: "password changed as the session began", user: func(u *tokend.User) { u.TokensNotBefore = at.Add(-time.Hour) }, advance: true, touch: true},
		{name: "password changed before the session began", user: func(u *tokend.User) { u.TokensNotBefore = at.Add(-2 * time.Hour) }, advance: true, touch: true},
		{name: "user gone", noUser: true},
		{name: "session revoked", session: func(se *tokend.Session) { se.RevokedAt, se.RevokeReason = at.Add(-time.Second), "logout" }},
		{name: "session expires at the step", session: func(se *tokend.Session) { se.ExpiresAt = at }},
		{name: "session expires just after", session: func(se *tokend.Session) { se.ExpiresAt = at.Add(time.Microsecond) }, advance: true, touch: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := newUser(fmt.Sprintf("user-%s", newID()), "")
			u.LastRefreshAt = at.Add(-time.Hour)
			// Custom claims: the step reads the whole user, as the
			// access tokens it leads to carry them.
			u.Claims = map[string]any{"tenant": "acme", "beta": true}
			if tc.user != nil {
				tc.user(u)
			}
			if !tc.noUser {
				createUser(t, s, u)
			}
			se := newSession(u.ID, c.ID, at.Add(-time.Hour))
			se.Scope, se.Counter, se.RotatedAt = "read write", 3, at.Add(-time.Second)
			if tc.session != nil {
				tc.session(se)
			}
			createSession(t, s, se)
			r := tokend.RefreshStep{SessionID: se.ID, Counter: 3, ClientID: c.ID, Dialect: "oauth", Rotate: true, Grace: grace, At: at}
			if tc.step != nil {
				tc.step(&r)
			}
			var want *tokend.User
			if !tc.noUser {
				want = u
			}
			// The rule itself says what the table says...
			if adv, touch := r.Decide(se, want); adv != tc.advance || touch != tc.touch {
				t.Fatalf("Decide = advance %v, touch %v; the table says %v, %v", adv, touch, tc.advance, tc.touch)
			}
			// ...and the store does what the rule says.
			got, err := s.StepRefresh(t.Context(), r)
			must(t, err, "refresh step")
			if got.Advanced != tc.advance {
				t.Errorf("Advanced = %v, want %v", got.Advanced, tc.advance)
			}
			wantEqual(t, "session read by the step", got.Session, se)
			if tc.noUser {
				if got.User != nil {
					t.Errorf("the step read a user that does not exist: %+v", got.User)
				}
			} else {
				wantEqual(t, "user read by the step", got.User, u)
			}
			if tc.advance {
				se.Counter, se.RotatedAt = se.Counter+1, r.At
			}
			wantEqual(t, "session after the step", getSession(t, s, se.ID), se)
			if !tc.noUser {
				if tc.touch {
					u.LastRefreshAt = r.At
				}
				wantEqual(t, "user after the step", getUser(t, s, u.ID), u)
			}
		})
	}
	t.Run("unknown session", func(t *testing.T) {
		_, err := s.StepRefresh(t.Context(), tokend.RefreshStep{SessionID: newID(), Rotate: true, At: at})
		wantCode(t, err, tokend.ENOTFOUND, "refresh step of an unknown session")
		_, err = s.StepRefresh(t.Context(), tokend.RefreshStep{SessionID: "\xff\x00", Rotate: true, At: at})
		wantCode(t, err, tokend.ENOTFOUND, "refresh step of an impossible session id")
	})
}

// testRefreshStepConcurrent: of many concurrent steps with the same
// counter, exactly one advances the session.
func testRefreshStepConcurrent(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	u := createUser(t, s, newUser("alice", ""))
	at := now()
	se := createSession(t, s, newSession(u.ID, "", at.Add(-time.Minute)))
	const n = 50
	results := make([]*tokend.RefreshResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.StepRefresh(t.Context(), tokend.RefreshStep{
				SessionID: se.ID, Counter: 0, Dialect: "oauth", Rotate: true, Grace: time.Minute, At: at,
			})
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	for i, err := range errs {
		must(t, err, fmt.Sprintf("refresh step %d", i))
		if results[i].Advanced {
			winners++
		}
	}
	if winners != 1 {
		t.Fatalf("%d of %d concurrent refresh steps advanced the session, want exactly 1", winners, n)
	}
	se.Counter, se.RotatedAt = 1, at
	wantEqual(t, "session after concurrent steps", getSession(t, s, se.ID), se)
	if got := getUser(t, s, u.ID); !got.LastRefreshAt.Equal(at) {
		t.Errorf("LastRefreshAt = %v, want %v", got.LastRefreshAt, at)
	}
}

// testRefreshStepBesidePasswordChange runs refresh steps of a user's
// sessions while the user's password changes (which takes the user's row,
// then the sessions'), over and over: every call must succeed (a store that
// took the rows in the other order would deadlock and fail some), and once
// a change has committed, no step advances a session that began before it.
func testRefreshStepBesidePasswordChange(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	u := createUser(t, s, newUser("alice", ""))
	const rounds, sessions = 8, 6
	for round := range rounds {
		at := now()
		var ids []string
		for range sessions {
			ids = append(ids, createSession(t, s, newSession(u.ID, "", at)).ID)
		}
		changed := at.Add(time.Duration(round+1) * time.Microsecond)
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 2*sessions+1)
		wg.Go(func() {
			<-start
			errs <- s.SetUserPasswordEndSessions(t.Context(), u.ID, "new-hash", changed)
		})
		for _, id := range ids {
			for range 2 {
				wg.Go(func() {
					<-start
					_, err := s.StepRefresh(t.Context(), tokend.RefreshStep{SessionID: id, Dialect: "oauth", Rotate: true, At: at})
					errs <- err
				})
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err, fmt.Sprintf("round %d: refresh step or password change", round))
		}
		// The change has committed: every session is revoked, and no step
		// moves one now.
		for _, id := range ids {
			got, err := s.StepRefresh(t.Context(), tokend.RefreshStep{SessionID: id, Counter: getSession(t, s, id).Counter, Dialect: "oauth", Rotate: true, At: now()})
			must(t, err, "refresh step after the change")
			if got.Advanced {
				t.Fatalf("round %d: a session that began before the password change advanced after it", round)
			}
		}
	}
}
