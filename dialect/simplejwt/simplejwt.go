// Package simplejwt serves the token API of AISquare Studio, which follows
// django-rest-framework-simplejwt (shared/spec/dialects.md, section
// "simplejwt"; seed 001): POST /api/v1/token/ obtains a refresh and an
// access token for a username and password, /api/v1/token/refresh/ trades a
// refresh token for a new access token, /api/v1/token/verify/ checks a
// token and /api/v1/token/blacklist/ ends a refresh token's session.
//
// Requests and answers keep Django REST framework's shapes: JSON (or form)
// bodies, per-field validation errors such as
// {"username": ["This field is required."]}, and {"detail": ...} for
// everything else. Both tokens are JWTs made by the engine (the refresh
// token is the engine's refresh JWT, carrying the session and its
// generation), so credential checks, sessions, rotation, reuse detection
// and revocation are the engine's, exactly as at /oauth2/token.
package simplejwt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/token"
)

// Paths of the endpoints; each is served with and without its trailing slash.
const (
	PathObtain    = "/api/v1/token/"
	PathRefresh   = "/api/v1/token/refresh/"
	PathVerify    = "/api/v1/token/verify/"
	PathBlacklist = "/api/v1/token/blacklist/"
)

// Config holds the dialect's settings.
type Config struct {
	// Alg signs the dialect's tokens; "" means the server's default.
	Alg string
	// AccessTTL and RefreshTTL are the token lifetimes (AISquare's
	// documented 7 and 30 days). RefreshTTL is the session's lifetime.
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// Rotate turns refresh-token rotation on (simplejwt's
	// ROTATE_REFRESH_TOKENS, off by default): each refresh then returns a
	// new refresh token as well, and the engine's reuse detection applies.
	Rotate bool
}

// DefaultConfig is the spec's defaults.
var DefaultConfig = Config{AccessTTL: 7 * 24 * time.Hour, RefreshTTL: 30 * 24 * time.Hour}

// Handler serves the dialect.
type Handler struct {
	engine  *grant.Engine
	profile *grant.Profile
}

// New returns the dialect's handler on engine.
func New(engine *grant.Engine, cfg Config) *Handler {
	return &Handler{engine: engine, profile: Profile(cfg)}
}

// Profile is the shape of simplejwt tokens (spec: "Tokens"): typ "JWT";
// token_type "access" (or "refresh", set by the engine on refresh JWTs),
// user_id (the user's id) and a 32-hex jti, on top of iss, sub, aud, iat,
// exp and the session id the engine sets. The OAuth-only
// preferred_username and roles claims are left out, as the spec's claim
// list has no place for them.
func Profile(cfg Config) *grant.Profile {
	return &grant.Profile{
		Dialect: dialect.SimpleJWT, Alg: cfg.Alg, Type: token.TypeJWT,
		AccessTTL: cfg.AccessTTL, RefreshTTL: cfg.RefreshTTL,
		Rotate: cfg.Rotate, RefreshJWT: true,
		Decorate: func(c *token.Claims, u *tokend.User, _ *tokend.ClientApp) {
			c.TokenType = "access"
			if u != nil {
				c.UserID = u.ID
			}
			c.Username, c.Roles = "", nil
		},
	}
}

// Register mounts the four endpoints. Any method but POST gets Django REST
// framework's 405.
func (h *Handler) Register(mux httpapi.Mux) {
	dialect.Handle(mux, dialect.SimpleJWT, "POST", PathObtain, h.serveObtain, methodNotAllowed)
	dialect.Handle(mux, dialect.SimpleJWT, "POST", PathRefresh, h.serveRefresh, methodNotAllowed)
	dialect.Handle(mux, dialect.SimpleJWT, "POST", PathVerify, h.serveVerify, methodNotAllowed)
	dialect.Handle(mux, dialect.SimpleJWT, "POST", PathBlacklist, h.serveBlacklist, methodNotAllowed)
}

// Messages of the answers (Django REST framework's and simplejwt's own
// wording, except where the spec marks a choice as ours).
const (
	msgRequired       = "This field is required."
	msgBlank          = "This field may not be blank."
	msgNull           = "This field may not be null."
	msgNotString      = "Not a valid string."
	msgNoAccount      = "No active account found with the given credentials"
	msgTokenInvalid   = "Token is invalid or expired"
	codeTokenNotValid = "token_not_valid"
	msgParse          = "JSON parse error"
	msgMediaType      = "Unsupported media type in request."
	msgTooLarge       = "Request body too large."
	msgUnavailable    = "Service temporarily unavailable, try again later."
	msgServerError    = "A server error occurred."
)

// detail is the body of every error that is not about one field: a
// message and, for token errors, simplejwt's code.
type detail struct {
	Detail string `json:"detail"`
	Code   string `json:"code,omitempty"`
}

// The answers to a refused token (refresh, verify, blacklist) and to a
// refused login (obtain).
var (
	tokenNotValid = detail{Detail: msgTokenInvalid, Code: codeTokenNotValid}
	noAccount     = detail{Detail: msgNoAccount}
)

// pair is the answer of obtain, in simplejwt's field order.
type pair struct {
	Refresh string `json:"refresh"`
	Access  string `json:"access"`
}

// refreshed is the answer of refresh: the new refresh token only when
// rotation is on.
type refreshed struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh,omitempty"`
}

// serveObtain serves POST /api/v1/token/ (simplejwt's TokenObtainPairView).
func (h *Handler) serveObtain(w http.ResponseWriter, r *http.Request) {
	b, ok := h.read(w, r)
	if !ok {
		return
	}
	var fe fieldErrors
	username := fe.char(b, "username")
	password := fe.char(b, "password")
	if fe.any() {
		h.invalid(w, &fe)
		return
	}
	// DRF trims a CharField; the password is passed exactly as sent (ours),
	// as /oauth2/token does, so no two endpoints disagree on a password.
	issued, err := h.engine.Password(r.Context(), h.profile, nil, strings.TrimSpace(username), password, "")
	if err != nil {
		h.fail(w, r, err, noAccount)
		return
	}
	dialect.WriteJSON(w, http.StatusOK, pair{Refresh: issued.RefreshToken, Access: issued.AccessToken})
}

// serveRefresh serves POST /api/v1/token/refresh/ (TokenRefreshView). An
// "access" field, if sent, is ignored. The engine refuses a refresh token
// of another dialect or of the standard endpoints, an access token, and a
// refresh token that is invalid, expired, revoked or reused.
func (h *Handler) serveRefresh(w http.ResponseWriter, r *http.Request) {
	raw, ok := h.readToken(w, r, "refresh")
	if !ok {
		return
	}
	issued, err := h.engine.Refresh(r.Context(), h.profile, nil, raw, "")
	if err != nil {
		h.fail(w, r, err, tokenNotValid)
		return
	}
	out := refreshed{Access: issued.AccessToken}
	if h.profile.Rotate {
		out.Refresh = issued.RefreshToken
	}
	dialect.WriteJSON(w, http.StatusOK, out)
}

// serveVerify serves POST /api/v1/token/verify/ (TokenVerifyView): 200 {}
// for a live access or refresh token of this dialect. Tokens of the other
// dialects and of the standard endpoints are not this API's, and get the
// same 400 as an invalid token (ours).
func (h *Handler) serveVerify(w http.ResponseWriter, r *http.Request) {
	raw, ok := h.readToken(w, r, "token")
	if !ok {
		return
	}
	c, s, err := h.engine.CheckToken(r.Context(), raw)
	switch {
	case err != nil:
	case c != nil && (c.TokenType != "access" || c.UserID == ""):
		err = errNotOurs // a live access token, but not one of this dialect
	case s != nil && s.Dialect != dialect.SimpleJWT:
		err = errNotOurs // a live refresh token of another front end
	}
	if err != nil {
		h.fail(w, r, err, tokenNotValid)
		return
	}
	dialect.WriteJSON(w, http.StatusOK, struct{}{})
}

// serveBlacklist serves POST /api/v1/token/blacklist/ (TokenBlacklistView):
// the refresh token's session is revoked, and with it every token of the
// session. A token that is not a live refresh token of this dialect
// (already blacklisted, rotated away, expired, an access token) gets 400.
func (h *Handler) serveBlacklist(w http.ResponseWriter, r *http.Request) {
	raw, ok := h.readToken(w, r, "refresh")
	if !ok {
		return
	}
	ctx := r.Context()
	s, err := h.ownSession(ctx, raw)
	if err == nil {
		err = h.engine.RevokeSession(ctx, nil, s.ID)
	}
	if err != nil {
		h.fail(w, r, err, tokenNotValid)
		return
	}
	dialect.WriteJSON(w, http.StatusOK, struct{}{})
}

var errNotOurs = &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: "token of another dialect"}

// ownSession returns the session of a live refresh token of this dialect.
func (h *Handler) ownSession(ctx context.Context, raw string) (*tokend.Session, error) {
	s, err := h.engine.CheckRefresh(ctx, raw)
	if err != nil {
		return nil, err
	}
	if s.Dialect != dialect.SimpleJWT {
		return nil, errNotOurs
	}
	return s, nil
}

// refused reports whether err is the engine refusing a token, as opposed
// to failing (store down, overload).
func refused(err error) bool {
	switch tokend.ErrorCode(err) {
	case tokend.EINVALIDTOKEN, tokend.EINVALIDGRANT:
		return true
	}
	return false
}

// read reads the request body, answering the request itself when it
// cannot: 413, 415 or a parse error (a key named twice is one, at any
// depth). Form bodies are accepted too, as Django REST framework does.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) (dialect.Body, bool) {
	w.Header().Set("Cache-Control", "no-store")
	b, err := dialect.ReadJSON(w, r, true)
	if err == nil {
		return b, true
	}
	status, msg := http.StatusBadRequest, msgParse
	var dup *dialect.DuplicateError
	switch {
	case errors.As(err, &dup) && dup.Form:
		// One reading of each request (ours: Django would take the last value).
		msg = "Form parse error - duplicate parameter " + dup.Key
	case errors.As(err, &dup):
		msg = msgParse + " - duplicate key " + dup.Path
	case errors.Is(err, dialect.ErrTooLarge):
		status, msg = http.StatusRequestEntityTooLarge, msgTooLarge
	case errors.Is(err, dialect.ErrMediaType):
		status, msg = http.StatusUnsupportedMediaType, msgMediaType
	}
	h.engine.CountFailure(dialect.SimpleJWT, tokend.EINVALID)
	dialect.WriteJSON(w, status, detail{Detail: msg})
	return nil, false
}

// readToken reads a body whose one field that matters is a token.
func (h *Handler) readToken(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	b, ok := h.read(w, r)
	if !ok {
		return "", false
	}
	var fe fieldErrors
	raw := fe.char(b, name)
	if fe.any() {
		h.invalid(w, &fe)
		return "", false
	}
	return raw, true
}

// invalid answers 400 with the field errors.
func (h *Handler) invalid(w http.ResponseWriter, fe *fieldErrors) {
	h.engine.CountFailure(dialect.SimpleJWT, tokend.EINVALID)
	dialect.WriteJSON(w, http.StatusBadRequest, fe)
}

// fail renders an engine error: refused is the 400 body of the endpoint
// (no active account, or token_not_valid) for credentials or tokens the
// engine refuses; 503 with Retry-After when it is overloaded or its store
// unreachable; 500 with a generic message, logged, for anything else.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, refusal detail) {
	code := tokend.ErrorCode(err)
	status, body := http.StatusBadRequest, refusal
	switch {
	case refused(err):
	case code == tokend.ETOOMANY:
		// Django REST framework's throttling answer.
		status, body = http.StatusTooManyRequests, detail{Detail: "Request was throttled. Expected available in " + tokend.RetryAfterSeconds(err) + " seconds."}
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
	case code == tokend.EUNAVAILABLE:
		status, body = http.StatusServiceUnavailable, detail{Detail: msgUnavailable}
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
		h.engine.Logger().Debug("simplejwt request refused: unavailable", "path", r.URL.Path, "err", err)
	default:
		status, body = http.StatusInternalServerError, detail{Detail: msgServerError}
		h.engine.Logger().Error("simplejwt request failed", "path", r.URL.Path, "err", err)
	}
	h.engine.CountFailure(dialect.SimpleJWT, code)
	dialect.WriteJSON(w, status, body)
}

// methodNotAllowed is Django REST framework's 405.
func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "POST")
	dialect.WriteJSON(w, http.StatusMethodNotAllowed, detail{Detail: `Method "` + r.Method + `" not allowed.`})
}

// fieldErrors collects Django REST framework's validation errors: one
// message per field at fault, in the serializer's field order (so a body
// with both fields wrong reports both, username first).
type fieldErrors struct {
	names, msgs []string
}

// char reads a required string field as a DRF CharField does: missing,
// null, blank (empty or only whitespace) and non-string values are errors.
// DRF would turn a number into a string; we refuse every non-string (ours).
func (fe *fieldErrors) char(b dialect.Body, name string) string {
	v, kind := b.Field(name)
	msg := ""
	switch {
	case kind == dialect.Missing:
		msg = msgRequired
	case kind == dialect.Null:
		msg = msgNull
	case kind == dialect.Other:
		msg = msgNotString
	case strings.TrimSpace(v) == "":
		msg = msgBlank
	}
	if msg != "" {
		fe.names, fe.msgs = append(fe.names, name), append(fe.msgs, msg)
	}
	return v
}

func (fe *fieldErrors) any() bool { return len(fe.names) > 0 }

// MarshalJSON writes {"field": ["message"], ...} in field order.
func (fe *fieldErrors) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, name := range fe.names {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(name)
		v, _ := json.Marshal([]string{fe.msgs[i]})
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
