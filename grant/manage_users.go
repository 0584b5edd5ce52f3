package grant

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/token"
)

// CheckClaims checks a user's custom claims: a JSON object of at most
// MaxClaimsBytes (as compact JSON) whose names are not Reserved, since
// tokend sets those itself.
func CheckClaims(field string, claims map[string]any) []tokend.FieldError {
	var errs []tokend.FieldError
	for _, name := range slices.Sorted(maps.Keys(claims)) {
		switch {
		case name == "":
			errs = append(errs, fieldErr(field, "a claim name must not be empty"))
		case token.Reserved(name):
			errs = append(errs, fieldErr(field+"."+name, "%q is a registered claim or one tokend sets; choose another name", name))
		}
	}
	b, err := json.Marshal(claims)
	switch {
	case err != nil:
		errs = append(errs, fieldErr(field, "must be a JSON object"))
	case bytes.Contains(b, []byte(`\u0000`)):
		// PostgreSQL keeps no NUL in JSON; refused everywhere alike.
		errs = append(errs, fieldErr(field, "must not contain NUL characters"))
	case len(b) > MaxClaimsBytes:
		errs = append(errs, fieldErr(field, "is %d bytes as JSON; at most %d", len(b), MaxClaimsBytes))
	}
	return errs
}

// NewUser is what CreateUser makes a user of.
type NewUser struct {
	Username string
	// Password is the user's password; empty: none, and the user cannot
	// log in with one until it is set.
	Password string
	Roles    []string
	Claims   map[string]any
	Disabled bool
}

// Check validates n, dropping duplicate roles, and returns every problem.
func (n *NewUser) Check() []tokend.FieldError {
	errs := CheckUsername("username", n.Username)
	if n.Password != "" {
		errs = append(errs, CheckPassword("password", n.Password)...)
	}
	roles, rerrs := CheckRoles("roles", n.Roles)
	n.Roles = roles
	return append(append(errs, rerrs...), CheckClaims("claims", n.Claims)...)
}

func duplicateUser(name string) error {
	return &tokend.Error{Code: tokend.ECONFLICT, Message: fmt.Sprintf("user %q already exists", name), Field: "username"}
}

// nameIsNoID refuses a username that is the id of a user other than
// self: some tokens carry a username where others carry an id (Atoti's
// sub), and ids brought by an import (import.go) need not be UUIDs.
func (m *Manager) nameIsNoID(ctx context.Context, name, self string) error {
	u, err := m.Store.UserByID(ctx, name)
	switch {
	case tokend.ErrorCode(err) == tokend.ENOTFOUND:
		return nil
	case err != nil:
		return fmt.Errorf("check username: %w", err)
	case u.ID == self:
		return nil
	}
	return &tokend.Error{Code: tokend.ECONFLICT, Message: fmt.Sprintf("%q is the id of another user, so it cannot be a username", safeText(name)), Field: "username"}
}

// CreateUser creates a user of no client app. EINVALID lists every bad
// field; ECONFLICT if the username is taken.
func (m *Manager) CreateUser(ctx context.Context, n NewUser) (*tokend.User, error) {
	if err := tokend.Invalid(n.Check()); err != nil {
		return nil, err
	}
	if err := m.nameIsNoID(ctx, n.Username, ""); err != nil {
		return nil, err
	}
	u := &tokend.User{
		ID: uuid.Must(uuid.NewV7()).String(), Username: n.Username, Roles: n.Roles,
		Claims: n.Claims, Disabled: n.Disabled, CreatedAt: m.now().UTC().Truncate(time.Microsecond),
	}
	if n.Password != "" {
		var err error
		if u.PasswordHash, err = secret.HashPassword(n.Password, m.Params); err != nil {
			return nil, fmt.Errorf("create user: %w", err)
		}
	}
	if err := m.Store.CreateUser(ctx, u); err != nil {
		if tokend.ErrorCode(err) == tokend.ECONFLICT {
			return nil, duplicateUser(n.Username)
		}
		return nil, fmt.Errorf("create user: %w", err)
	}
	return u, m.done(ctx, "user.created", u.ID, "", "username="+u.Username)
}

// User returns the user with this id; ENOTFOUND naming it if there is none.
func (m *Manager) User(ctx context.Context, id string) (*tokend.User, error) {
	u, err := m.Store.UserByID(ctx, id)
	if tokend.ErrorCode(err) == tokend.ENOTFOUND {
		return nil, tokend.Errorf(tokend.ENOTFOUND, "no user %q", safeText(id))
	}
	return u, err
}

// FindUser returns a user of no client app by name, or any user by id.
func (m *Manager) FindUser(ctx context.Context, nameOrID string) (*tokend.User, error) {
	u, err := m.Store.UserByName(ctx, nameOrID)
	if tokend.ErrorCode(err) == tokend.ENOTFOUND {
		return m.User(ctx, nameOrID)
	}
	return u, err
}

// Users returns a page of users (tokend.Store's FindUsers).
func (m *Manager) Users(ctx context.Context, q tokend.UserQuery) ([]*tokend.User, error) {
	return m.Store.FindUsers(ctx, q)
}

// UserPatch changes some of a user's fields; nil ones stay as they are.
type UserPatch struct {
	Username *string
	Roles    *[]string
	Claims   *map[string]any
	Disabled *bool
}

// Check validates p, dropping duplicate roles, and returns every problem.
func (p *UserPatch) Check() []tokend.FieldError {
	var errs []tokend.FieldError
	if p.Username != nil {
		errs = append(errs, CheckUsername("username", *p.Username)...)
	}
	if p.Roles != nil {
		roles, rerrs := CheckRoles("roles", *p.Roles)
		*p.Roles = roles
		errs = append(errs, rerrs...)
	}
	if p.Claims != nil {
		errs = append(errs, CheckClaims("claims", *p.Claims)...)
	}
	return errs
}

// apply returns u with p applied and the names of the fields it changes.
func (p *UserPatch) apply(u *tokend.User) (tokend.User, []string) {
	out := *u
	var fields []string
	if p.Username != nil && *p.Username != u.Username {
		out.Username, fields = *p.Username, append(fields, "username")
	}
	if p.Roles != nil && !slices.Equal(*p.Roles, u.Roles) {
		out.Roles, fields = *p.Roles, append(fields, "roles")
	}
	if p.Claims != nil && !sameClaims(*p.Claims, u.Claims) {
		out.Claims, fields = *p.Claims, append(fields, "claims")
	}
	if p.Disabled != nil && *p.Disabled != u.Disabled {
		out.Disabled, fields = *p.Disabled, append(fields, "disabled")
	}
	return out, fields
}

func sameClaims(a, b map[string]any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && (string(ja) == string(jb) || len(a)+len(b) == 0)
}

// UpdateUser changes a user. It reads the user, checks match (EPRECONDITION
// if the version is not the expected one), and writes the change with a
// compare-and-swap on that version, so that a change made meanwhile is
// never overwritten: with match it is EPRECONDITION, without it the
// update starts again on the newer user. Disabling a user ends its
// sessions. ENOTFOUND, EINVALID (every bad field) and ECONFLICT (the
// username is taken) as usual. A patch that changes nothing writes
// nothing.
func (m *Manager) UpdateUser(ctx context.Context, id string, p UserPatch, match Precondition) (*tokend.User, error) {
	if err := tokend.Invalid(p.Check()); err != nil {
		return nil, err
	}
	if p.Username != nil {
		if err := m.nameIsNoID(ctx, *p.Username, id); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		u, err := m.User(ctx, id)
		if err != nil {
			return nil, err
		}
		if match != nil && !match(u.Version) {
			return nil, errStale
		}
		next, fields := p.apply(u)
		if len(fields) == 0 {
			return u, nil
		}
		err = m.Store.UpdateUser(ctx, &next, u.Version, m.now())
		switch code := tokend.ErrorCode(err); {
		case code == tokend.EPRECONDITION && match == nil && attempt < 5:
			continue
		case code == tokend.EPRECONDITION:
			return nil, errStale
		case code == tokend.ECONFLICT:
			return nil, duplicateUser(next.Username)
		case code == tokend.ENOTFOUND:
			return nil, tokend.Errorf(tokend.ENOTFOUND, "no user %q", safeText(id))
		case err != nil:
			return nil, fmt.Errorf("update user: %w", err)
		}
		event := "user.updated"
		if len(fields) == 1 && fields[0] == "disabled" {
			event = map[bool]string{true: "user.disabled", false: "user.enabled"}[next.Disabled]
		}
		return &next, m.done(ctx, event, next.ID, next.ClientID, "username="+next.Username+" fields="+strings.Join(fields, ","))
	}
}

// SetUserDisabled disables a user, ending its sessions, or enables it.
// Disabling a disabled user still ends any session it has.
func (m *Manager) SetUserDisabled(ctx context.Context, id string, disabled bool) (*tokend.User, error) {
	u, err := m.UpdateUser(ctx, id, UserPatch{Disabled: &disabled}, nil)
	if err != nil || !disabled {
		return u, err
	}
	if _, err := m.EndUserSessions(ctx, u.ID, "user disabled"); err != nil {
		return nil, err
	}
	return u, nil
}

// DeleteUser deletes a user and its sessions: its tokens stop working at
// once. With match, the user must be at the expected version
// (EPRECONDITION), checked atomically with the deletion.
func (m *Manager) DeleteUser(ctx context.Context, id string, match Precondition) error {
	u, err := m.User(ctx, id)
	if err != nil {
		return err
	}
	var version int64
	if match != nil {
		if !match(u.Version) {
			return errStale
		}
		version = u.Version
	}
	switch err := m.Store.DeleteUser(ctx, id, version); tokend.ErrorCode(err) {
	case "":
	case tokend.EPRECONDITION:
		return errStale
	case tokend.ENOTFOUND:
		return tokend.Errorf(tokend.ENOTFOUND, "no user %q", safeText(id))
	default:
		return fmt.Errorf("delete user: %w", err)
	}
	return m.done(ctx, "user.deleted", u.ID, u.ClientID, "username="+u.Username)
}

// SetUserPassword gives a user a new password. Unless keepSessions, it
// also ends every session of the user and every access token issued to the
// user until now (the rule is in users.go), so that whoever knew the old
// password is logged out. Audited as "user.password_changed". The CLI's
// `user passwd` and the admin API's PUT .../password both come here.
func (m *Manager) SetUserPassword(ctx context.Context, id, password string, keepSessions bool) error {
	if err := tokend.Invalid(CheckPassword("password", password)); err != nil {
		return err
	}
	u, err := m.User(ctx, id)
	if err != nil {
		return err
	}
	hash, err := secret.HashPassword(password, m.Params)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	detail := "sessions=ended"
	if keepSessions {
		err, detail = m.Store.SetUserPassword(ctx, u.ID, hash), "sessions=kept"
	} else {
		// One transaction: the hash, the user's TokensNotBefore and the
		// end of every session (users.go has the rule).
		err = m.Store.SetUserPasswordEndSessions(ctx, u.ID, hash, m.now())
	}
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return m.done(ctx, "user.password_changed", u.ID, u.ClientID, detail)
}

// EndUserSessions revokes every live session of a user, and with them
// the access tokens issued in them; it returns how many it revoked. This
// is the one place that logs a user out everywhere.
func (m *Manager) EndUserSessions(ctx context.Context, userID, reason string) (int, error) {
	n, err := m.Store.RevokeUserSessions(ctx, userID, m.now(), reason)
	if err != nil {
		return 0, fmt.Errorf("end sessions of user %s: %w", userID, err)
	}
	if n > 0 {
		m.changed(ctx)
	}
	return n, nil
}

// safeText keeps a caller's string short and printable in a message.
func safeText(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return '?'
		}
		return r
	}, s)
}
