package tokend

import "time"

// RevokedToken is a revoked access token, as the revocation feed needs it:
// its jti and when it expires, after which it needs no denying.
type RevokedToken struct {
	JTI       string
	ExpiresAt time.Time
}

// RevokedSession is a revoked session, as the revocation feed needs it: the
// access tokens it issued may live up to the longest token lifetime past
// the earlier of RevokedAt and ExpiresAt.
type RevokedSession struct {
	ID        string
	UserID    string
	RevokedAt time.Time
	ExpiresAt time.Time
}
