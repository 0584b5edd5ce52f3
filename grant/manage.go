package grant

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/secret"
)

// Manager runs tokend's management operations: users, client apps,
// sessions, signing keys and the audit trail. The admin API and the
// command line both call it, so that one set of rules holds whichever
// front end asks: every input is validated here (reporting every bad
// field at once), and every change is an audit event naming its actor.
type Manager struct {
	Store tokend.Store
	// Vault seals new signing keys; nil: no master key.
	Vault *keys.Vault
	// Params hash new passwords.
	Params secret.Params
	// Dialect names the front end in audit events ("admin", "cli").
	Dialect string
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Log receives what cannot be returned; nil: discarded.
	Log *slog.Logger
	// Changed, when set, runs after every change, so that the caller's
	// caches apply it at once (the server's Engine.Sync) rather than at
	// the next poll.
	Changed func(ctx context.Context)
}

// Manager returns a Manager for the admin API on the engine's store, key
// vault and password parameters; its changes reach the engine's caches at
// once.
func (e *Engine) Manager() *Manager {
	return &Manager{
		Store: e.store, Vault: e.vault, Params: e.hasher.Params, Dialect: DialectAdmin, Now: e.now, Log: e.log,
		Changed: func(ctx context.Context) {
			if err := e.Sync(ctx); err != nil {
				e.log.Warn("sync after a management change", "err", err)
			}
		},
	}
}

// DialectAdmin names the admin API in audit events.
const DialectAdmin = "admin"

// Limits of what the management operations accept. Names, roles, scopes
// and custom claims all end up in access tokens: together they keep the
// largest token within token.MaxLen.
const (
	MaxNameLen     = 200  // usernames and client names, bytes
	MaxPasswordLen = 1024 // bytes
	MaxRoles       = 32
	MaxRoleLen     = 32   // bytes
	MaxClaimsBytes = 4096 // a user's custom claims, as compact JSON
	MaxScopes      = 32
	MaxScopeLen    = 64 // bytes
	// MaxClientAccessTTL caps a client app's own access-token lifetime, so
	// that a retired key is published long enough for every token it signed.
	MaxClientAccessTTL = 24 * time.Hour
	// MaxOverlap caps how long a client's previous secret keeps working.
	MaxOverlap = 30 * 24 * time.Hour
	// MaxPrepublish caps how long a new signing key waits before it signs.
	MaxPrepublish = 30 * 24 * time.Hour
)

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) changed(ctx context.Context) {
	if m.Changed != nil {
		m.Changed(ctx)
	}
}

type actorKey struct{}

// WithActor marks ctx as a request of actor, who is named in the audit
// events of the changes made on its behalf: "client:<id>", "user:<id>" or
// "cli".
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorOf returns the actor ctx carries, or "".
func ActorOf(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// record writes the audit event of a change, at once and in the store
// (not through the engine's batching Auditor: a management change is rare,
// and its trace must not be dropped when a buffer is full).
func (m *Manager) record(ctx context.Context, event, subject, clientID, detail string) error {
	err := m.Store.AppendAudit(ctx, []tokend.AuditEvent{{
		At: m.now(), Event: event, Subject: subject, ClientID: clientID, Dialect: m.Dialect,
		IP: tokend.ClientIP(ctx), Outcome: "success", Detail: detail, Actor: ActorOf(ctx),
	}})
	if err != nil {
		return fmt.Errorf("record %s: %w", event, err)
	}
	return nil
}

// done finishes a change: its audit event, then the caches.
func (m *Manager) done(ctx context.Context, event, subject, clientID, detail string) error {
	m.changed(ctx)
	return m.record(ctx, event, subject, clientID, detail)
}

// Precondition tells whether a stored object's version is the one a
// caller expects (the admin API's If-Match); nil expects nothing.
type Precondition func(version int64) bool

var errStale = &tokend.Error{Code: tokend.EPRECONDITION, Message: "the object changed since that version (If-Match does not match)"}

// Validation helpers. Each returns the problems of one field, so that a
// request's every problem can be reported at once.

func fieldErr(field, format string, args ...any) tokend.FieldError {
	return tokend.FieldError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// CheckName checks a username or client name: 1 to 200 bytes of UTF-8,
// no surrounding spaces, no control characters.
func CheckName(field, s string) []tokend.FieldError {
	switch {
	case s == "" || len(s) > MaxNameLen || strings.TrimSpace(s) != s:
		return []tokend.FieldError{fieldErr(field, "must be 1 to %d characters without surrounding spaces", MaxNameLen)}
	case !utf8.ValidString(s):
		return []tokend.FieldError{fieldErr(field, "must be UTF-8")}
	case strings.ContainsFunc(s, unicode.IsControl):
		return []tokend.FieldError{fieldErr(field, "must not contain control characters")}
	}
	return nil
}

// CheckUsername checks a new username: CheckName's rules, and none that
// could be taken for an id (tokend.ValidUsername).
func CheckUsername(field, s string) []tokend.FieldError {
	if errs := CheckName(field, s); len(errs) > 0 {
		return errs
	}
	if err := tokend.ValidUsername(s); err != nil {
		return []tokend.FieldError{fieldErr(field, "%s", tokend.ErrorMessage(err))}
	}
	return nil
}

// CheckPassword checks a new password: 1 to 1024 bytes.
func CheckPassword(field, pw string) []tokend.FieldError {
	if pw == "" || len(pw) > MaxPasswordLen {
		return []tokend.FieldError{fieldErr(field, "must be 1 to %d bytes", MaxPasswordLen)}
	}
	return nil
}

// word reports whether s is one printable word of at most max bytes.
func word(s string, max int) bool {
	return s != "" && len(s) <= max && utf8.ValidString(s) &&
		!strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// CheckRoles checks a user's roles and returns them without duplicates.
func CheckRoles(field string, roles []string) ([]string, []tokend.FieldError) {
	var errs []tokend.FieldError
	if len(roles) > MaxRoles {
		errs = append(errs, fieldErr(field, "at most %d roles", MaxRoles))
	}
	var out []string
	for i, r := range roles {
		if !word(r, MaxRoleLen) {
			errs = append(errs, fieldErr(fmt.Sprintf("%s[%d]", field, i), "a role is one word of 1 to %d bytes", MaxRoleLen))
			continue
		}
		if !contains(out, r) {
			out = append(out, r)
		}
	}
	return out, errs
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}
