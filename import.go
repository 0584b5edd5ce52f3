package tokend

import (
	"encoding/json"
	"slices"
	"time"
)

// Importing users from another system (Store.ImportUsers): each user of a
// batch either is new, or matches a stored user, by the id the source
// system gave it or else by its username. What happens then is decided
// here, by Plan, so that both stores (and a dry run, which only reads)
// decide alike.

// ImportUser is one user of an import batch.
type ImportUser struct {
	// User is the user to create, or the new state of the user it matches
	// (in the fields that Given names). Its ID is the one the source
	// system gave, or a new UUIDv7 when it gave none.
	User User
	// ByID: the source named the id, so the user matches the stored user
	// with that id; otherwise it matches the user of no client app with
	// its username.
	ByID bool
	// Update: a user that matches is overwritten with the fields that
	// Given names; otherwise it is left as it is (ImportExists).
	Update bool
	// Given names the fields that the record set. On an update the others
	// keep their stored values; the username is always given.
	Given ImportFields
	// At is when the import runs: a password changed by an update ends
	// the sessions and tokens of the user from this time on, as a
	// password change does (User.TokensNotBefore).
	At time.Time
}

// ImportFields is a set of the fields of an imported user.
type ImportFields uint8

// Fields an import record may set besides the username.
const (
	ImportPassword ImportFields = 1 << iota
	ImportRoles
	ImportClaims
	ImportDisabled
	ImportCreatedAt
	ImportLastLoginAt
)

// ImportOutcome is what Store.ImportUsers did with one ImportUser.
type ImportOutcome struct {
	Result string // ImportCreated, ImportUpdated, ...
	// ID is the id of the user created, updated or matched; empty when
	// another user holds the username or the id.
	ID string
}

// Results of importing one user.
const (
	ImportCreated = "created"
	ImportUpdated = "updated"
	// ImportUnchanged: an update matched a user that already is as given.
	ImportUnchanged = "unchanged"
	// ImportExists: the user matched a stored one, left as it was (no
	// update asked).
	ImportExists = "exists"
	// ImportUsernameTaken: another user has the username, or has it as
	// its id.
	ImportUsernameTaken = "username_taken"
	// ImportIDTaken: the id is a client app's, its end user's, or
	// another user's username.
	ImportIDTaken = "id_taken"
)

// ImportPlan is what to do with one ImportUser.
type ImportPlan struct {
	Outcome ImportOutcome
	// Write is the user to insert (ImportCreated) or the new state of the
	// stored user (ImportUpdated); nil otherwise.
	Write *User
	// PasswordChanged: an update replaces the password hash, so the store
	// ends the user's sessions in the same transaction (Write's
	// TokensNotBefore is then At).
	PasswordChanged bool
}

// ImportState is what the store holds that an ImportUser may meet.
type ImportState struct {
	// ByID is the user with the ImportUser's id (looked up only when
	// ByID is set), ByName the user of no client app with its username.
	ByID, ByName *User
	// IDIsClient: the id is a client app's (only when ByID is set).
	IDIsClient bool
	// IDAsName is the user of no client app whose username is the
	// ImportUser's id (only when ByID is set), NameAsID the user whose id
	// is its username: some tokens carry a username where others carry
	// an id (Atoti's sub), so no string may be one user's id and another
	// user's username. (Ids made by tokend are UUIDs, which no username
	// may look like; ids brought by an import need this check.)
	IDAsName, NameAsID *User
}

// Plan decides what to do with in, given what the store holds now.
func (in *ImportUser) Plan(st ImportState) ImportPlan {
	match := st.ByName
	if in.ByID {
		if st.IDIsClient || (st.ByID != nil && st.ByID.ClientID != "") {
			return ImportPlan{Outcome: ImportOutcome{Result: ImportIDTaken}}
		}
		match = st.ByID
	}
	if match != nil && !in.Update {
		return ImportPlan{Outcome: ImportOutcome{Result: ImportExists, ID: match.ID}}
	}
	self := in.User.ID // the user's id, once created or updated
	if match != nil {
		self = match.ID
	}
	switch {
	case st.ByName != nil && st.ByName.ID != self, st.NameAsID != nil && st.NameAsID.ID != self:
		return ImportPlan{Outcome: ImportOutcome{Result: ImportUsernameTaken}}
	case in.ByID && st.IDAsName != nil && st.IDAsName.ID != self:
		return ImportPlan{Outcome: ImportOutcome{Result: ImportIDTaken}}
	}
	if match == nil {
		u := in.User
		return ImportPlan{Outcome: ImportOutcome{Result: ImportCreated, ID: u.ID}, Write: &u}
	}
	next := *match
	next.Username = in.User.Username
	g := in.Given
	if g&ImportPassword != 0 {
		next.PasswordHash = in.User.PasswordHash
	}
	if g&ImportRoles != 0 {
		next.Roles = in.User.Roles
	}
	if g&ImportClaims != 0 {
		next.Claims = in.User.Claims
	}
	if g&ImportDisabled != 0 {
		next.Disabled = in.User.Disabled
	}
	if g&ImportCreatedAt != 0 {
		next.CreatedAt = in.User.CreatedAt
	}
	if g&ImportLastLoginAt != 0 {
		next.LastLoginAt = in.User.LastLoginAt
	}
	if sameImported(&next, match) {
		return ImportPlan{Outcome: ImportOutcome{Result: ImportUnchanged, ID: match.ID}}
	}
	changed := next.PasswordHash != match.PasswordHash
	if changed {
		next.TokensNotBefore = in.At
	}
	return ImportPlan{Outcome: ImportOutcome{Result: ImportUpdated, ID: match.ID}, Write: &next, PasswordChanged: changed}
}

// sameImported reports whether a and b agree in every field an import
// writes.
func sameImported(a, b *User) bool {
	return a.Username == b.Username && a.PasswordHash == b.PasswordHash &&
		slices.Equal(a.Roles, b.Roles) && sameClaims(a.Claims, b.Claims) && a.Disabled == b.Disabled &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastLoginAt.Equal(b.LastLoginAt)
}

func sameClaims(a, b map[string]any) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
