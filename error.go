package tokend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Error codes are the engine's vocabulary for what went wrong. Only the HTTP
// layer and each dialect's renderer turn them into statuses and bodies, so the
// engine never decides how an error looks on the wire.
const (
	EINVALID            = "invalid_request"     // malformed or missing input
	EINVALIDCLIENT      = "invalid_client"      // client authentication failed
	EINVALIDGRANT       = "invalid_grant"       // bad user credentials, bad or revoked refresh token
	EUNAUTHORIZEDCLIENT = "unauthorized_client" // client may not use this grant or touch this token
	EUNSUPPORTEDGRANT   = "unsupported_grant_type"
	EINVALIDSCOPE       = "invalid_scope"
	EINVALIDTOKEN       = "invalid_token" // a presented token is invalid, expired or revoked
	EFORBIDDEN          = "forbidden"     // authenticated, but not allowed here
	ENOTFOUND           = "not_found"
	ECONFLICT           = "conflict"
	EUNAVAILABLE        = "unavailable"       // overloaded or the store is unreachable: retry later
	ETOOMANY            = "too_many_requests" // locked out or rate limited: retry after RetryAfter
	EINTERNAL           = "internal"
)

// EPRECONDITION: the object changed since the version the caller named
// (a lost compare-and-swap of the management API: HTTP 412).
const EPRECONDITION = "precondition_failed"

// Error is a failure the caller may be shown. Message is safe to show to a
// client: it never contains a secret, password or token.
type Error struct {
	Code    string
	Message string
	// Field names the request field at fault, when there is one.
	Field string
	// Err is the underlying cause, for logs; it is never shown to clients.
	Err error
	// RetryAfter says when to try again, for ETOOMANY and EUNAVAILABLE.
	RetryAfter time.Duration
	// Fields lists every bad field of a request that failed validation
	// (EINVALID), so that a caller can fix them all at once.
	Fields []FieldError
}

// FieldError is one bad field of a request. Field is a path into the
// request ("username", "roles[2]", "claims.iss"); Detail says what is
// wrong, safely (never a secret).
type FieldError struct {
	Field  string
	Detail string
}

// Invalid returns an EINVALID error listing fields, or nil if there are none.
func Invalid(fields []FieldError) error {
	if len(fields) == 0 {
		return nil
	}
	msg := fields[0].Field + ": " + fields[0].Detail
	if len(fields) > 1 {
		msg = fmt.Sprintf("%s (and %d more)", msg, len(fields)-1)
	}
	return &Error{Code: EINVALID, Message: msg, Field: fields[0].Field, Fields: fields}
}

// ErrorFields returns the bad fields err lists, if any.
func ErrorFields(err error) []FieldError {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the client-safe message of err; unknown errors get a
// generic message so that internals never leak.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// RetryAfter returns when a refused caller may try again: the error's
// RetryAfter, at least one second.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > time.Second {
		return e.RetryAfter
	}
	return time.Second
}

// RetryAfterSeconds is RetryAfter as the value of a Retry-After header.
func RetryAfterSeconds(err error) string {
	return strconv.Itoa(int(math.Ceil(RetryAfter(err).Seconds())))
}

// ErrorField returns the request field named by err, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

type ctxKey int

const clientIPKey ctxKey = iota

// WithClientIP returns a context that carries the IP address of the client
// a request came from (request-scoped: for rate limits and the audit trail).
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey, ip)
}

// ClientIP returns the client IP address ctx carries, or "".
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey).(string)
	return ip
}
