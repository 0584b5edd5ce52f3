package tokend

import "time"

// ConsoleSession is one sign-in to the web console. The cookie holds a
// random token; the store keeps only its SHA-256 hash, so that a copy of
// the database signs no one in.
type ConsoleSession struct {
	TokenHash  []byte
	UserID     string
	CreatedAt  time.Time
	LastSeenAt time.Time // the latest request: the idle timeout runs from it
	ExpiresAt  time.Time // the absolute end, however active the session
}

// Stats are the counts the console's overview shows.
type Stats struct {
	Users        int // users of no client app
	EndUsers     int // end users of client apps
	Clients      int
	LiveSessions int // login sessions neither revoked nor expired
}
