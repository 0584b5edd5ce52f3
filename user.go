package tokend

import (
	"strings"
	"unicode"

	"github.com/google/uuid"
)

// MaxUsernameLen bounds a username, in bytes.
const MaxUsernameLen = 200

// ValidUsername checks a new username of a user that belongs to no client
// app (the CLI's `user add` and the admin API both call it). Besides the
// plain rules (1 to MaxUsernameLen bytes, no surrounding spaces, no control
// characters), a username must not look like a UUID, in any spelling
// uuid.Parse accepts: user and client ids are UUIDs, and some tokens carry
// the username where others carry an id (Atoti's sub), so a username that
// could be read as an id could be taken for another user or a client. It
// returns an EINVALID *Error naming the rule broken.
func ValidUsername(name string) error {
	if name == "" || len(name) > MaxUsernameLen || strings.TrimSpace(name) != name {
		return Errorf(EINVALID, "a user name must be 1 to %d characters without surrounding spaces", MaxUsernameLen)
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return Errorf(EINVALID, "a user name must not contain control characters")
	}
	if uuid.Validate(name) == nil {
		return Errorf(EINVALID, "a user name must not look like a UUID: ids are UUIDs, and a name must never be taken for one")
	}
	return nil
}
