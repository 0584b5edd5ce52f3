// Package atoti serves the token endpoint of ActiveViam Atoti Server
// (GET /activeviam/jwt/rest/v3/token; shared/spec/dialects.md, seed 000).
// A Basic login mints a token; a caller that presents a valid JWT gets that
// very token back, so that a token's life can never be extended by trading
// it in.
package atoti

import (
	"net/http"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/token"
)

// Path is the endpoint.
const Path = "/activeviam/jwt/rest/v3/token"

// Config holds the dialect's settings.
type Config struct {
	// Alg signs Atoti tokens (RS512 by default: what Atoti verifies).
	Alg string
	// TTL is the token lifetime (Atoti's activeviam.jwt.expiration, 12 h).
	TTL time.Duration
}

// DefaultConfig is Atoti's own defaults.
var DefaultConfig = Config{Alg: "RS512", TTL: 12 * time.Hour}

// Handler serves the dialect.
type Handler struct {
	engine  *grant.Engine
	profile *grant.Profile
}

// New returns the dialect's handler on engine.
func New(engine *grant.Engine, cfg Config) *Handler {
	return &Handler{engine: engine, profile: Profile(cfg)}
}

// Profile is the shape of Atoti tokens: sub is the username and
// authorities the user's roles; no session, no refresh token.
func Profile(cfg Config) *grant.Profile {
	return &grant.Profile{
		Dialect: dialect.Atoti, Alg: cfg.Alg, Type: token.TypeJWT, AccessTTL: cfg.TTL, NoSession: true,
		Decorate: func(c *token.Claims, u *tokend.User, _ *tokend.ClientApp) {
			c.Subject = u.Username
			c.Authorities = u.Roles
			if c.Authorities == nil {
				c.Authorities = []string{}
			}
			c.Username, c.Roles = "", nil
		},
	}
}

// Register mounts the endpoint.
func (h *Handler) Register(mux httpapi.Mux) {
	dialect.Handle(mux, dialect.Atoti, "GET", Path, h.serveToken, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET")
		dialect.WriteJSON(w, http.StatusMethodNotAllowed, map[string]any{})
	})
}

type tokenBody struct {
	Token string `json:"token"`
}

func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	auth := r.Header.Get("Authorization")
	// A JWT caller gets its own token back, never a new one; an invalid JWT
	// never falls back to another scheme.
	if raw, ok := dialect.Bearer(auth, "Bearer", "Jwt"); ok {
		if _, err := h.engine.CheckAccess(r.Context(), raw); err != nil {
			h.fail(w, r, err)
			return
		}
		dialect.WriteJSON(w, http.StatusOK, tokenBody{Token: raw})
		return
	}
	username, password, ok := r.BasicAuth()
	if !ok || username == "" || password == "" {
		h.fail(w, r, &tokend.Error{Code: tokend.EINVALIDGRANT, Message: "credentials required"})
		return
	}
	u, err := h.engine.CheckUser(r.Context(), username, password)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	issued, err := h.engine.Login(r.Context(), h.profile, nil, u, "")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	dialect.WriteJSON(w, http.StatusOK, tokenBody{Token: issued.AccessToken})
}

// fail renders an error: 401 with {} for any credential problem (the seed
// types the body as a Token object), 429 when locked out or rate limited,
// 503 when overloaded, 500 otherwise.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusUnauthorized
	switch code := tokend.ErrorCode(err); code {
	case tokend.EUNAVAILABLE:
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
	case tokend.ETOOMANY: // locked out or rate limited (DESIGN.md: 429 in the dialect's own body)
		status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
	case tokend.EINTERNAL:
		status = http.StatusInternalServerError
		h.engine.Logger().Error("atoti token request failed", "err", err)
	default:
		w.Header().Set("WWW-Authenticate", `Basic realm="atoti"`)
	}
	h.engine.CountFailure(dialect.Atoti, tokend.ErrorCode(err))
	dialect.WriteJSON(w, status, map[string]any{})
}
