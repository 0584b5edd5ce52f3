// Package simplejwt serves the token API of AISquare Studio, which follows
// django-rest-framework-simplejwt (shared/spec/dialects.md, section
// "simplejwt"; seed 001): POST /api/v1/token/ obtains a refresh and an
// access token for a username and password, /api/v1/token/refresh/ trades a
// refresh token for a new access token, /api/v1/token/verify/ checks a
// token and /api/v1/token/blacklist/ ends a refresh token's session.
//
// Requests and answers are stock simplejwt's wherever the seed is silent
// (measured against django-rest-framework-simplejwt 5.2.2 by the
// differential test): JSON, form and multipart bodies read as Django REST
// framework reads them (request.go), per-field validation errors such as
// {"username": ["This field is required."]}, {"detail": ...} for the rest,
// 401 with simplejwt's detail and code for a bad token, DRF's metadata on
// OPTIONS (metadata.go). Both tokens are JWTs made by the engine (the
// refresh token is the engine's refresh JWT, carrying the session and its
// generation), so credential checks, sessions, rotation, reuse detection
// and revocation are the engine's, exactly as at /oauth2/token. With Alg
// HS256 (or HS384, HS512) they are signed with the dialect's own key, the
// SIGNING_KEY of the deployment's Django services, and only this dialect's
// endpoints (and introspection) accept them back.
package simplejwt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

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
	// Alg signs the dialect's tokens; "" means the server's default. HS256,
	// HS384 and HS512 sign with the dialect's symmetric key, which the
	// engine holds (grant.Config.SymmetricKeys).
	Alg string
	// AccessTTL and RefreshTTL are the token lifetimes (AISquare's
	// documented 7 and 30 days). RefreshTTL is the session's lifetime.
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// Rotate turns refresh-token rotation on (simplejwt's
	// ROTATE_REFRESH_TOKENS, off by default): each refresh then returns a
	// new refresh token as well, and the engine's reuse detection applies.
	Rotate bool
	// ObtainStatus is the status of a refused login at obtain: 400, as the
	// seed documents (0 means 400), or 401 with WWW-Authenticate, as stock
	// simplejwt answers (ours).
	ObtainStatus int
	// UserIDClaim and TokenTypeClaim are the names of the user_id and
	// token_type claims on the wire (simplejwt's USER_ID_CLAIM and
	// TOKEN_TYPE_CLAIM); "" keeps those names.
	UserIDClaim    string
	TokenTypeClaim string
}

// DefaultConfig is the spec's defaults.
var DefaultConfig = Config{AccessTTL: 7 * 24 * time.Hour, RefreshTTL: 30 * 24 * time.Hour, ObtainStatus: http.StatusBadRequest}

// names are the claim renames of cfg.
func (c Config) names() token.ClaimNames {
	n := token.ClaimNames{}
	if c.UserIDClaim != "" {
		n["user_id"] = c.UserIDClaim
	}
	if c.TokenTypeClaim != "" {
		n["token_type"] = c.TokenTypeClaim
	}
	return n
}

// Validate reports every setting New cannot use.
func (c Config) Validate() error {
	var errs []error
	if c.ObtainStatus != 0 && c.ObtainStatus != http.StatusBadRequest && c.ObtainStatus != http.StatusUnauthorized {
		errs = append(errs, fmt.Errorf("simplejwt obtain status %d: want 400 or 401", c.ObtainStatus))
	}
	if err := c.names().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("simplejwt claim names: %w", err))
	}
	return errors.Join(errs...)
}

// Handler serves the dialect.
type Handler struct {
	engine  *grant.Engine
	profile *grant.Profile
	cfg     Config
}

// New returns the dialect's handler on engine.
func New(engine *grant.Engine, cfg Config) *Handler {
	if cfg.ObtainStatus == 0 {
		cfg.ObtainStatus = http.StatusBadRequest
	}
	return &Handler{engine: engine, profile: Profile(cfg), cfg: cfg}
}

// Profile is the shape of simplejwt tokens (spec: "Tokens"): typ "JWT";
// token_type "access" (or "refresh", set by the engine on refresh JWTs),
// user_id (the user's id: a JSON number when it is a decimal integer, as
// Django's integer primary keys are) and a 32-hex jti, on top of iss, sub,
// aud, iat, exp and the session id the engine sets. The OAuth-only
// preferred_username and roles claims are left out, as the spec's claim
// list has no place for them. user_id and token_type go under the names
// cfg gives them.
func Profile(cfg Config) *grant.Profile {
	return &grant.Profile{
		Dialect: dialect.SimpleJWT, Alg: cfg.Alg, Type: token.TypeJWT,
		AccessTTL: cfg.AccessTTL, RefreshTTL: cfg.RefreshTTL,
		Rotate: cfg.Rotate, RefreshJWT: true, ClaimNames: cfg.names(),
		Decorate: func(c *token.Claims, u *tokend.User, _ *tokend.ClientApp) {
			c.TokenType = "access"
			if u != nil {
				c.UserID = token.NumericID(u.ID)
			}
			c.Username, c.Roles = "", nil
		},
	}
}

// Register mounts the four endpoints. OPTIONS gets Django REST framework's
// metadata, any other method but POST its 405.
func (h *Handler) Register(mux httpapi.Mux) {
	for path, serve := range map[string]func(http.ResponseWriter, *http.Request, data){
		PathObtain: h.serveObtain, PathRefresh: h.serveRefresh, PathVerify: h.serveVerify, PathBlacklist: h.serveBlacklist,
	} {
		dialect.Handle(mux, dialect.SimpleJWT, "POST", path, h.post(serve), h.other(path))
	}
}

// Messages of the answers (Django REST framework's and simplejwt's own
// wording, except where the spec marks a choice as ours).
const (
	msgRequired       = "This field is required."
	msgBlank          = "This field may not be blank."
	msgNull           = "This field may not be null."
	msgNotString      = "Not a valid string."
	msgNullChar       = "Null characters are not allowed."
	msgNoAccount      = "No active account found with the given credentials"
	msgTokenInvalid   = "Token is invalid or expired"
	msgBlacklisted    = "Token is blacklisted"
	msgWrongType      = "Token has wrong type"
	codeTokenNotValid = "token_not_valid"
	msgParse          = "JSON parse error"
	msgNotAcceptable  = "Could not satisfy the request Accept header."
	msgTooLarge       = "Request body too large."
	msgUnavailable    = "Service temporarily unavailable, try again later."
	msgServerError    = "A server error occurred."
)

// authenticate is the WWW-Authenticate of simplejwt's 401s.
const authenticate = `Bearer realm="api"`

// detail is the body of every error that is not about one field: a
// message and, for token errors, simplejwt's code.
type detail struct {
	Detail string `json:"detail"`
	Code   string `json:"code,omitempty"`
}

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

// post serves a POST as a DRF view does: content negotiation (406), then
// the body (415, 413, parse errors, a JSON body that is no object), then
// the endpoint.
func (h *Handler) post(serve func(http.ResponseWriter, *http.Request, data)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST, OPTIONS")
		w.Header().Set("Cache-Control", "no-store")
		if !accepted(r.Header.Values("Accept")) {
			h.refuse(w, http.StatusNotAcceptable, detail{Detail: msgNotAcceptable})
			return
		}
		d, failure := readData(w, r)
		switch f := failure.(type) {
		case *bodyError:
			h.refuse(w, f.status, detail{Detail: f.detail})
			return
		case nonField:
			h.refuse(w, http.StatusBadRequest, map[string][]string{"non_field_errors": {string(f)}})
			return
		}
		serve(w, r, d)
	}
}

// other serves every method but POST on path: OPTIONS gets the view's
// metadata, anything else Django REST framework's 405.
func (h *Handler) other(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST, OPTIONS")
		switch {
		case !accepted(r.Header.Values("Accept")):
			h.refuse(w, http.StatusNotAcceptable, detail{Detail: msgNotAcceptable})
		case r.Method == http.MethodOptions:
			serveOptions(w, path)
		default:
			dialect.WriteJSON(w, http.StatusMethodNotAllowed, detail{Detail: `Method "` + r.Method + `" not allowed.`})
		}
	}
}

// serveObtain serves POST /api/v1/token/ (simplejwt's TokenObtainPairView).
func (h *Handler) serveObtain(w http.ResponseWriter, r *http.Request, d data) {
	var fe fieldErrors
	username := fe.char(d, "username")
	password := fe.char(d, "password")
	if fe.any() {
		h.invalid(w, &fe)
		return
	}
	// DRF trims a CharField; the password is passed exactly as sent (ours),
	// as /oauth2/token does, so no two endpoints disagree on a password.
	issued, err := h.engine.Password(r.Context(), h.profile, nil, trim(username), password, "")
	if err != nil {
		if refused(err) {
			if h.cfg.ObtainStatus == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", authenticate)
			}
			h.engine.CountFailure(dialect.SimpleJWT, tokend.ErrorCode(err))
			dialect.WriteJSON(w, h.cfg.ObtainStatus, detail{Detail: msgNoAccount})
			return
		}
		h.fail(w, r, err)
		return
	}
	dialect.WriteJSON(w, http.StatusOK, pair{Refresh: issued.RefreshToken, Access: issued.AccessToken})
}

// serveRefresh serves POST /api/v1/token/refresh/ (TokenRefreshView). An
// "access" field, if sent, is ignored. The engine refuses a refresh token
// of another dialect or of the standard endpoints, an access token, and a
// refresh token that is invalid, expired, revoked or reused.
func (h *Handler) serveRefresh(w http.ResponseWriter, r *http.Request, d data) {
	raw, ok := h.readToken(w, d, "refresh")
	if !ok {
		return
	}
	issued, err := h.engine.Refresh(r.Context(), h.profile, nil, raw, "")
	if err != nil {
		h.failToken(w, r, err)
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
// same 401 as an invalid token (ours).
func (h *Handler) serveVerify(w http.ResponseWriter, r *http.Request, d data) {
	raw, ok := h.readToken(w, d, "token")
	if !ok {
		return
	}
	c, s, err := h.engine.CheckTokenFor(r.Context(), h.profile, raw)
	switch {
	case err != nil:
	case c != nil && (c.TokenType != "access" || c.UserID == ""):
		err = errNotOurs // a live access token, but not one of this dialect
	case s != nil && s.Dialect != dialect.SimpleJWT:
		err = errNotOurs // a live refresh token of another front end
	}
	if err != nil {
		h.failToken(w, r, err)
		return
	}
	dialect.WriteJSON(w, http.StatusOK, struct{}{})
}

// serveBlacklist serves POST /api/v1/token/blacklist/ (TokenBlacklistView):
// the refresh token's session is revoked, and with it every token of the
// session. A token that is not a live refresh token of this dialect
// (already blacklisted, rotated away, expired, an access token) gets 401.
func (h *Handler) serveBlacklist(w http.ResponseWriter, r *http.Request, d data) {
	raw, ok := h.readToken(w, d, "refresh")
	if !ok {
		return
	}
	ctx := r.Context()
	s, err := h.ownSession(ctx, raw)
	if err == nil {
		err = h.engine.RevokeSession(ctx, nil, s.ID)
	}
	if err != nil {
		h.failToken(w, r, err)
		return
	}
	dialect.WriteJSON(w, http.StatusOK, struct{}{})
}

var errNotOurs = &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: "token of another dialect"}

// ownSession returns the session of a live refresh token of this dialect.
func (h *Handler) ownSession(ctx context.Context, raw string) (*tokend.Session, error) {
	s, err := h.engine.CheckRefreshFor(ctx, h.profile, raw)
	if err != nil {
		return nil, err
	}
	if s.Dialect != dialect.SimpleJWT {
		return nil, errNotOurs
	}
	return s, nil
}

// refused reports whether err is the engine refusing a token or a login,
// as opposed to failing (store down, overload).
func refused(err error) bool {
	switch tokend.ErrorCode(err) {
	case tokend.EINVALIDTOKEN, tokend.EINVALIDGRANT:
		return true
	}
	return false
}

// readToken reads the one field of a body that matters: a token.
func (h *Handler) readToken(w http.ResponseWriter, d data, name string) (string, bool) {
	var fe fieldErrors
	raw := fe.char(d, name)
	if fe.any() {
		h.invalid(w, &fe)
		return "", false
	}
	return raw, true
}

// invalid answers 400 with the field errors.
func (h *Handler) invalid(w http.ResponseWriter, fe *fieldErrors) {
	h.refuse(w, http.StatusBadRequest, fe)
}

// refuse answers a request refused before the engine saw it.
func (h *Handler) refuse(w http.ResponseWriter, status int, body any) {
	h.engine.CountFailure(dialect.SimpleJWT, tokend.EINVALID)
	dialect.WriteJSON(w, status, body)
}

// failToken renders an engine error about a presented token: a refused
// token gets stock simplejwt's 401 (InvalidToken), whose detail says why:
// revoked (blacklisted), an access token where a refresh token belongs,
// or anything else; the rest as fail.
func (h *Handler) failToken(w http.ResponseWriter, r *http.Request, err error) {
	if !refused(err) {
		h.fail(w, r, err)
		return
	}
	msg := msgTokenInvalid
	switch {
	case errors.Is(err, grant.ErrRevoked):
		msg = msgBlacklisted
	case errors.Is(err, grant.ErrNotRefreshToken):
		msg = msgWrongType
	}
	h.engine.CountFailure(dialect.SimpleJWT, tokend.ErrorCode(err))
	w.Header().Set("WWW-Authenticate", authenticate)
	dialect.WriteJSON(w, http.StatusUnauthorized, detail{Detail: msg, Code: codeTokenNotValid})
}

// fail renders an engine error that is not a refusal: 429 with
// Retry-After when locked out or rate limited, 503 with Retry-After when
// the engine is overloaded or its store unreachable, 500 with a generic
// message, logged, for anything else.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := tokend.ErrorCode(err)
	var status int
	var body detail
	switch code {
	case tokend.ETOOMANY:
		// Django REST framework's throttling answer.
		status, body = http.StatusTooManyRequests, detail{Detail: "Request was throttled. Expected available in " + tokend.RetryAfterSeconds(err) + " seconds."}
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
	case tokend.EUNAVAILABLE:
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

// fieldErrors collects Django REST framework's validation errors: one
// message per field at fault, in the serializer's field order (so a body
// with both fields wrong reports both, username first).
type fieldErrors struct {
	names, msgs []string
}

// pySpace is Python's str.isspace, which DRF's trimming of a CharField
// follows: Unicode white space and the four ASCII separators 0x1c-0x1f.
func pySpace(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f }

// trim is DRF's trimming of a CharField's value.
func trim(s string) string { return strings.TrimFunc(s, pySpace) }

// char reads a required string field as a DRF CharField does: missing,
// null and blank (empty or only white space) values are errors, as are a
// boolean, list, object or file ("Not a valid string.") and a string with
// a NUL character; a number was already turned into its text (request.go).
func (fe *fieldErrors) char(d data, name string) string {
	f := d[name]
	msg := ""
	switch {
	case f.kind == missing:
		msg = msgRequired
	case f.kind == null:
		msg = msgNull
	case f.kind == other:
		msg = msgNotString
	case trim(f.text) == "":
		msg = msgBlank
	case strings.ContainsRune(f.text, 0):
		msg = msgNullChar
	}
	if msg != "" {
		fe.names, fe.msgs = append(fe.names, name), append(fe.msgs, msg)
	}
	return f.text
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
