// Package ocm serves the token endpoint of Oracle Content Management's REST
// API for Self-Management (POST /system/api/v1/security/token;
// shared/spec/dialects.md "ocm", seed 002). A user authenticates with HTTP
// Basic and gets an access token and a refresh token; a refresh token
// traded in gets a new access token for its subject and comes back
// unchanged (no rotation in this dialect). Client applications may not use
// the endpoint. Every error is Oracle's ExceptionDetail body.
package ocm

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/token"
)

// Path is the endpoint; it is served with a trailing slash too.
const Path = "/system/api/v1/security/token"

// Config holds the dialect's settings.
type Config struct {
	// Alg signs OCM access tokens; "" means the server's default.
	Alg string
	// AccessTTL is the access-token lifetime, reported in expiresInMillis.
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of a login session and so of its
	// refresh token.
	RefreshTTL time.Duration
}

// DefaultConfig is the spec's: access tokens live 14 days (the seed's
// example expiresInMillis is 1209600000), refresh tokens 30 days.
var DefaultConfig = Config{AccessTTL: 14 * 24 * time.Hour, RefreshTTL: 30 * 24 * time.Hour}

// The o:errorCode values of this dialect's ExceptionDetail bodies. The seed
// leaves the codes to the implementation; these are ours and stable, so
// clients may switch on them.
const (
	// CodeMalformed: the body is not a JSON object (malformed JSON, or
	// JSON that is not an object). 400.
	CodeMalformed = "OCM-TOKEN-400-MALFORMED"
	// CodeDuplicateKey: the body names a key twice (at any depth), so it
	// has no one reading. 400, o:errorPath the second one, e.g.
	// "$.refreshToken".
	CodeDuplicateKey = "OCM-TOKEN-400-DUPLICATE-KEY"
	// CodeMediaType: a non-empty body that is not application/json. 400.
	CodeMediaType = "OCM-TOKEN-400-MEDIA-TYPE"
	// CodeRefreshTokenType: refreshToken is not a string, or is empty.
	// 400, o:errorPath "$.refreshToken".
	CodeRefreshTokenType = "OCM-TOKEN-400-REFRESH-TOKEN-TYPE"
	// CodeRefreshTokenInvalid: the refresh token is invalid, expired or
	// revoked, or belongs to another front end. 400, o:errorPath
	// "$.refreshToken".
	CodeRefreshTokenInvalid = "OCM-TOKEN-400-REFRESH-TOKEN-INVALID"
	// CodeCredentialsRequired: no Basic credentials where they are needed. 401.
	CodeCredentialsRequired = "OCM-TOKEN-401-CREDENTIALS-REQUIRED"
	// CodeBadCredentials: wrong Basic credentials, or a disabled user. 401.
	CodeBadCredentials = "OCM-TOKEN-401-BAD-CREDENTIALS"
	// CodeClientApp: the Basic credentials are a client application's. 403.
	CodeClientApp = "OCM-TOKEN-403-CLIENT-APP"
	// CodeSubjectMismatch: the Basic user is not the refresh token's subject. 403.
	CodeSubjectMismatch = "OCM-TOKEN-403-SUBJECT-MISMATCH"
	// CodeMethodNotAllowed: a method other than POST. 405.
	CodeMethodNotAllowed = "OCM-TOKEN-405-METHOD-NOT-ALLOWED"
	// CodeTooLarge: a body over 64 KiB. 413.
	CodeTooLarge = "OCM-TOKEN-413-TOO-LARGE"
	// CodeTooManyRequests: refused by lockout or rate limiting. 429.
	CodeTooManyRequests = "OCM-TOKEN-429-TOO-MANY-REQUESTS"
	// CodeInternal: an internal failure; the detail says nothing more. 500.
	CodeInternal = "OCM-TOKEN-500-INTERNAL"
	// CodeUnavailable: overloaded or the store is unreachable; retry. 503.
	CodeUnavailable = "OCM-TOKEN-503-UNAVAILABLE"
)

// Handler serves the dialect.
type Handler struct {
	engine  *grant.Engine
	profile *grant.Profile
}

// New returns the dialect's handler on engine.
func New(engine *grant.Engine, cfg Config) *Handler {
	return &Handler{engine: engine, profile: Profile(cfg)}
}

// Profile is the shape of OCM tokens: the engine's standard claims (iss,
// sub = the user's id, aud, exp, iat, jti, sid, preferred_username, roles)
// under a plain "JWT" typ, opaque refresh tokens that are not rotated.
func Profile(cfg Config) *grant.Profile {
	return &grant.Profile{
		Dialect: dialect.OCM, Alg: cfg.Alg, Type: token.TypeJWT,
		AccessTTL: cfg.AccessTTL, RefreshTTL: cfg.RefreshTTL, Rotate: false,
	}
}

// Register mounts the endpoint, with and without a trailing slash; any
// method but POST gets a 405 ExceptionDetail.
func (h *Handler) Register(mux httpapi.Mux) {
	dialect.Handle(mux, dialect.OCM, "POST", Path, h.serveToken, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		h.fail(w, r, errMethod)
	})
}

// authToken is the seed's AuthToken.
type authToken struct {
	AccessToken     string `json:"accessToken"`
	TokenType       string `json:"tokenType"`
	ExpiresInMillis int64  `json:"expiresInMillis"`
	RefreshToken    string `json:"refreshToken"`
}

// serveToken serves POST /system/api/v1/security/token. The body (empty,
// {} or {"refreshToken": "..."}) is read first, then Basic credentials if
// any, then the engine is asked for a login or a refresh.
func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	body, err := dialect.ReadJSON(w, r, false)
	if err != nil {
		h.fail(w, r, readError(err))
		return
	}
	// null counts as absent (ours): Java clients serialize an unset
	// optional field as null.
	refresh, kind := body.Field("refreshToken")
	if kind == dialect.Other || (kind == dialect.String && refresh == "") {
		h.fail(w, r, errRefreshType)
		return
	}
	ctx := r.Context()
	user, err := h.basicUser(ctx, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var issued *grant.Issued
	if refresh == "" {
		if user == nil {
			h.fail(w, r, errCredentialsRequired)
			return
		}
		issued, err = h.engine.Login(ctx, h.profile, nil, user, "")
	} else {
		issued, err = h.refresh(ctx, user, refresh)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	dialect.WriteJSON(w, http.StatusOK, authToken{
		AccessToken:     issued.AccessToken,
		TokenType:       "Bearer",
		ExpiresInMillis: issued.ExpiresIn.Milliseconds(),
		RefreshToken:    issued.RefreshToken,
	})
}

// refresh issues a new access token for the subject of refresh token raw.
// A Basic user, when one authenticated, must be that subject (403 otherwise,
// checked before anything is issued). The session is not rotated, so the
// same refresh token comes back.
func (h *Handler) refresh(ctx context.Context, user *tokend.User, raw string) (*grant.Issued, error) {
	if user != nil {
		s, err := h.engine.CheckRefresh(ctx, raw)
		if err != nil {
			return nil, refreshError(err)
		}
		if s.UserID != user.ID {
			return nil, errSubjectMismatch
		}
	}
	issued, err := h.engine.Refresh(ctx, h.profile, nil, raw, "")
	if err != nil {
		return nil, refreshError(err)
	}
	return issued, nil
}

// basicUser returns the user of the request's Basic credentials, or nil if
// the request has none. Other Authorization schemes are ignored (a client
// may send its old Bearer token along with a refresh). Credentials of a
// client application are refused with 403 (the seed: "This end point can
// not be used to get token for client applications"); wrong ones with 401.
func (h *Handler) basicUser(ctx context.Context, r *http.Request) (*tokend.User, error) {
	if _, ok := dialect.Bearer(r.Header.Get("Authorization"), "Basic"); !ok {
		return nil, nil
	}
	username, password, ok := r.BasicAuth()
	if !ok || username == "" || password == "" {
		return nil, errBadCredentials
	}
	// Client app ids are UUIDs; only those are worth asking about.
	if uuid.Validate(username) == nil {
		_, err := h.engine.AuthenticateClient(ctx, username, password, false)
		switch tokend.ErrorCode(err) {
		case "":
			return nil, errClientApp
		case tokend.EINVALIDCLIENT:
			// Not a client app's credentials: maybe a user's.
		default:
			return nil, err
		}
	}
	u, err := h.engine.CheckUser(ctx, username, password)
	if tokend.ErrorCode(err) == tokend.EINVALIDGRANT {
		return nil, errBadCredentials
	}
	return u, err
}

// problem is an ExceptionDetail to render, with the engine's error code
// it counts under in metrics.
type problem struct {
	status int
	code   string // o:errorCode
	detail string
	path   string // o:errorPath, for a field at fault
	reason string // the metrics reason: an engine error code
}

func (p *problem) Error() string { return p.code }

// The fixed problems of this dialect.
var (
	errMalformed = &problem{status: 400, code: CodeMalformed, reason: tokend.EINVALID,
		detail: `The request body must be a JSON object, such as {} or {"refreshToken": "..."}.`}
	errMediaType = &problem{status: 400, code: CodeMediaType, reason: tokend.EINVALID,
		detail: "The request body must be sent as application/json."}
	errRefreshType = &problem{status: 400, code: CodeRefreshTokenType, path: "$.refreshToken", reason: tokend.EINVALID,
		detail: "refreshToken must be a non-empty string."}
	errRefreshInvalid = &problem{status: 400, code: CodeRefreshTokenInvalid, path: "$.refreshToken", reason: tokend.EINVALIDGRANT,
		detail: "The refresh token is invalid, expired or revoked."}
	errCredentialsRequired = &problem{status: 401, code: CodeCredentialsRequired, reason: tokend.EINVALIDGRANT,
		detail: "Authenticate with HTTP Basic as a user, or send a refreshToken."}
	errBadCredentials = &problem{status: 401, code: CodeBadCredentials, reason: tokend.EINVALIDGRANT,
		detail: "The username or password is incorrect."}
	errClientApp = &problem{status: 403, code: CodeClientApp, reason: tokend.EFORBIDDEN,
		detail: "This end point can not be used to get token for client applications."}
	errSubjectMismatch = &problem{status: 403, code: CodeSubjectMismatch, reason: tokend.EFORBIDDEN,
		detail: "The refresh token belongs to another user than the authenticated one."}
	errMethod = &problem{status: 405, code: CodeMethodNotAllowed, reason: tokend.EINVALID,
		detail: "Use POST on this endpoint."}
	errTooLarge = &problem{status: 413, code: CodeTooLarge, reason: tokend.EINVALID,
		detail: "The request body is larger than 64 KiB."}
	errTooMany = &problem{status: 429, code: CodeTooManyRequests, reason: tokend.ETOOMANY,
		detail: "Too many failed attempts. Retry later."}
	errUnavailable = &problem{status: 503, code: CodeUnavailable, reason: tokend.EUNAVAILABLE,
		detail: "The service is busy or temporarily unavailable. Retry later."}
	errInternal = &problem{status: 500, code: CodeInternal, reason: tokend.EINTERNAL,
		detail: "The request could not be completed because of an internal error."}
)

// readError turns an error of dialect.ReadJSON into its problem.
func readError(err error) error {
	var dup *dialect.DuplicateError
	switch {
	case errors.As(err, &dup):
		return &problem{status: 400, code: CodeDuplicateKey, path: dup.Path, reason: tokend.EINVALID,
			detail: "The request body names the key " + dup.Path + " more than once."}
	case errors.Is(err, dialect.ErrTooLarge):
		return errTooLarge
	case errors.Is(err, dialect.ErrMediaType):
		return errMediaType
	default:
		return errMalformed
	}
}

// refreshError turns the engine's refusal of a refresh token into a 400
// on $.refreshToken; other errors pass through.
func refreshError(err error) error {
	switch tokend.ErrorCode(err) {
	case tokend.EINVALIDGRANT, tokend.EINVALIDTOKEN:
		return errRefreshInvalid
	}
	return err
}

// titles are DESIGN.md's "OCM titles", and the types the RFC sections of
// each status, as Oracle's ExceptionDetail.type is a URI for the status.
var titles = map[int]struct{ title, typ string }{
	400: {"Illegal Argument", "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.1"},
	401: {"Unauthorized", "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.2"},
	403: {"Forbidden", "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.4"},
	405: {"Method Not Allowed", "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.6"},
	413: {"Payload Too Large", "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.14"},
	429: {"Too Many Requests", "https://www.rfc-editor.org/rfc/rfc6585#section-4"},
	500: {"Internal Server Error", "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.1"},
	503: {"Service Unavailable", "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.4"},
}

// exceptionDetail is the seed's ExceptionDetail.
type exceptionDetail struct {
	Type         string            `json:"type"`
	Title        string            `json:"title"`
	Status       int               `json:"status"`
	Detail       string            `json:"detail"`
	ErrorCode    string            `json:"o:errorCode"`
	ErrorPath    string            `json:"o:errorPath,omitempty"`
	ErrorDetails []exceptionDetail `json:"o:errorDetails,omitempty"`
}

// fail renders err as an ExceptionDetail. A problem of this dialect is
// rendered as it is; of the engine's errors, EUNAVAILABLE is a 503 with
// Retry-After and anything else is internal: logged here, once, and shown
// as a generic 500.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem
	if !errors.As(err, &p) {
		switch tokend.ErrorCode(err) {
		case tokend.ETOOMANY:
			p = errTooMany
		case tokend.EUNAVAILABLE:
			p = errUnavailable
			h.engine.Logger().Debug("ocm token request refused: unavailable", "err", err)
		default:
			p = errInternal
			h.engine.Logger().Error("ocm token request failed", "path", r.URL.Path, "err", err)
		}
	}
	switch p.status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="ocm"`)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
	}
	h.engine.CountFailure(dialect.OCM, p.reason)
	t := titles[p.status]
	dialect.WriteJSON(w, p.status, exceptionDetail{
		Type: t.typ, Title: t.title, Status: p.status, Detail: p.detail,
		ErrorCode: p.code, ErrorPath: p.path,
	})
}
