package tokend

import (
	"strings"
	"unicode/utf8"
)

// AuditFieldMax is the most bytes any text field of a stored audit event
// keeps. Subjects are often what a caller typed (an unknown username can
// be a whole request body), so the trail caps them rather than let each
// refused request write kilobytes.
const AuditFieldMax = 256

// securityEvents are the audit events that record a change to what can
// be trusted or a sign of an attack in progress. The auditor never drops
// them, even when its buffer is full (it blocks the request and writes
// them itself instead).
var securityEvents = map[string]bool{
	"refresh.reuse_detected": true,
	"account.locked":         true,
	"ip.throttled":           true,
	"key.rotated":            true,
	"client.secret_rotated":  true,
	"client.disabled":        true,
	"client.deleted":         true,
	"user.disabled":          true,
	"user.deleted":           true,
	"user.password_changed":  true,
}

// SecurityEvent reports whether event is one that must never be dropped
// from the audit trail.
func SecurityEvent(event string) bool { return securityEvents[event] }

// Capped returns e with every text field cut to AuditFieldMax bytes, on a
// UTF-8 character boundary, as valid UTF-8 without NULs, and Count at
// least 1. Stores apply it before
// writing; the engine's auditor applies it before queueing.
func (e AuditEvent) Capped() AuditEvent {
	for _, f := range e.TextFields() {
		*f = capText(*f, AuditFieldMax)
	}
	if e.Count < 1 {
		e.Count = 1
	}
	return e
}

// TextFields lists e's text fields, for code that treats them alike.
func (e *AuditEvent) TextFields() []*string {
	return []*string{&e.Event, &e.Subject, &e.ClientID, &e.Dialect, &e.IP, &e.Outcome, &e.Detail, &e.Actor}
}

// capText cuts s to at most max bytes without splitting a UTF-8
// sequence, and makes it valid UTF-8 without NUL bytes (invalid bytes and
// NULs become U+FFFD): PostgreSQL text refuses both, and one such field
// would fail the whole batch it is written in.
func capText(s string, max int) string {
	s = cutAt(s, max)
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	return cutAt(s, max)
}

// cutAt cuts s to at most max bytes, backing off to the start of the
// UTF-8 sequence that the cut would split.
func cutAt(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for back := 0; back < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); back++ {
		cut--
	}
	return s[:cut]
}
