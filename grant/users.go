package grant

import (
	"time"

	"github.com/tokend/tokend"
)

// Changing a user's password ends what the old password gave: every
// session of the user (so every refresh token, and the access tokens that
// name the session) and every access token issued to the user before the
// change, including those that belong to no session (an Atoti login).
//
// The rule, with tokens' iat in whole seconds: a user's access token is
// valid only if its iat is after the second of the user's TokensNotBefore
// (a token issued earlier in that second cannot be told from one issued
// later in it, and safety wins); a session can be refreshed only if it was
// created at or after TokensNotBefore itself (sessions keep microseconds).
// So that a login right after the change still works, tokend never issues
// a token to a user within the second of the user's last change: it waits
// for the next second (at most a second, and only right after a change;
// pastChangeSecond), so that iat stays the true time of issue, which
// verifiers with no leeway for iat also accept. The change is stamped with
// the changing process's clock: a node whose clock lags it by more than
// that second issues the user tokens that fail until its clock catches up,
// so the nodes' and the CLI host's clocks should agree.

// predates reports whether an access token issued at iat (unix seconds)
// to u came before u's password last changed (and so no longer counts).
func predates(u *tokend.User, iat int64) bool {
	return !u.TokensNotBefore.IsZero() && iat <= u.TokensNotBefore.Unix()
}

// sessionPredates reports whether session s began before u's password
// last changed: a login that raced the change, which must not refresh.
func sessionPredates(u *tokend.User, s *tokend.Session) bool {
	return s.CreatedAt.Before(u.TokensNotBefore)
}

// pastChangeSecond returns now, or, when now falls within the second of
// u's last password change (where iat could not tell the token from one
// issued before the change), the clock after waiting for the next second.
// The wait is at most a second and happens only right after a change; a
// clock that does not move (a test's) is not waited for twice.
func (e *Engine) pastChangeSecond(u *tokend.User, now time.Time) time.Time {
	if u == nil || u.TokensNotBefore.IsZero() || now.Unix() != u.TokensNotBefore.Unix() {
		return now
	}
	time.Sleep(time.Unix(now.Unix()+1, 0).Sub(now))
	return e.now()
}
