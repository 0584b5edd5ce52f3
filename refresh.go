package tokend

import (
	"slices"
	"strings"
	"time"
)

// RefreshStep is one refresh of a login session as Store.StepRefresh runs
// it: everything the engine needs from the store to refresh (the session,
// its user, the rotation's compare-and-swap and the user's last-refresh
// time) in one atomic step, one round trip on PostgreSQL. The engine still
// decides what to answer from what the step returns (grant.RefreshSession);
// the step only makes sure it never rotates or touches anything for a
// refresh the engine would refuse (Decide).
type RefreshStep struct {
	SessionID string
	// Counter is the generation of the refresh token presented.
	Counter int64
	// ClientID and Dialect must be the session's ("" for a session that
	// names no client).
	ClientID string
	Dialect  string
	// Scopes are the scope tokens asked for (none: the session's scope);
	// each must be one of the session's.
	Scopes []string
	// Rotate says whether the current generation moves the session on.
	Rotate bool
	// Grace is how long after a rotation the previous generation still
	// refreshes (0: not at all).
	Grace time.Duration
	At    time.Time
}

// RefreshResult is what StepRefresh read and did.
type RefreshResult struct {
	// Session is the session as read, before the step moved it: when
	// Advanced, its Counter is still the step's Counter.
	Session *Session
	// User is the session's user, nil if it no longer exists.
	User *User
	// Advanced is true when this step moved the session's counter from
	// the step's Counter to Counter+1 (at most one of any number of
	// concurrent steps with the same Counter does).
	Advanced bool
}

// Decide says what a refresh step does to session s of user u (nil if
// gone): nothing unless the session belongs to the step's client and
// dialect, is live at At, holds every scope asked for, and its user
// exists, is enabled and has not ended the session's credentials since it
// began (TokensNotBefore); then the current generation advances the
// counter when rotation is on, and the last-refresh time is touched for
// every generation the engine accepts: the current one, or, with rotation,
// the previous one within Grace of the last rotation. Stores that run the
// step in Go call it; PostgreSQL's statement spells the same rule in SQL.
func (r *RefreshStep) Decide(s *Session, u *User) (advance, touch bool) {
	if s.ClientID != r.ClientID || s.Dialect != r.Dialect || !s.Live(r.At) ||
		u == nil || u.Disabled || s.CreatedAt.Before(u.TokensNotBefore) {
		return false, false
	}
	held := strings.Fields(s.Scope)
	for _, sc := range r.Scopes {
		if !slices.Contains(held, sc) {
			return false, false
		}
	}
	switch {
	case r.Counter == s.Counter:
		return r.Rotate, true
	case r.Rotate && r.Grace > 0 && r.Counter == s.Counter-1 && r.At.Sub(s.RotatedAt) <= r.Grace:
		return false, true
	}
	return false, false
}
