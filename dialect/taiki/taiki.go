// Package taiki serves Integuru Taiki's "Initialize JWT Token" endpoint
// (POST /api/token; shared/spec/dialects.md section "taiki", seed 003).
// The caller is a client application that presents its api_key (the client
// id) and api_secret in a JSON body; it gets a one-hour JWT for one of its
// end users, created on demand when it names none. The client app's mode
// (sandbox or production) travels in the token, and a server configured
// with a host or path prefix for a mode accepts each app in its own mode
// only.
//
// The dialect checks no credential itself: the engine authenticates the
// client (grant.Engine.AuthenticateClient), finds or creates the end user
// (EndUser) and signs the token (IssueForClient), so rotation overlaps,
// disabled clients and users, revocation and metrics hold here as they do
// at /oauth2/token.
package taiki

import (
	"github.com/google/uuid"

	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/token"
)

// Path is the endpoint, below a mode's prefix when one is configured.
const Path = "/api/token"

// Config holds the dialect's settings.
type Config struct {
	// Alg signs Taiki tokens; empty means the server's default algorithm.
	// HS256, HS384 and HS512 (the seed's example token is HS256) sign with
	// the dialect's symmetric key, which the engine holds
	// (grant.Config.SymmetricKeys); such tokens verify with the key the
	// Taiki app holds, and at tokend only through introspection.
	Alg string
	// UserIDClaim and TokenTypeClaim are the names of the taiki_user_id
	// and token_type claims on the wire; "" keeps those names.
	UserIDClaim    string
	TokenTypeClaim string
	// TTL is the token lifetime (the seed: "It expires in 1 hour"). A
	// client app's own access-token lifetime, when set, wins.
	TTL time.Duration

	// SandboxPrefix and ProductionPrefix, when set (e.g. "/sandbox"),
	// serve that mode's endpoint at <prefix>/api/token; a request there
	// belongs to that mode (spec: "Modes", ours). When only one mode has a
	// prefix, the bare /api/token is the other mode's endpoint; with both
	// or neither, it serves both modes. A prefix is one or more path
	// segments of letters, digits and "-._~"; Register panics on anything
	// else, as on any invalid route.
	SandboxPrefix    string
	ProductionPrefix string
	// SandboxHost and ProductionHost, when set, make a request whose Host
	// (without port, case-insensitive) equals one of them belong to that
	// mode. When only one mode has a host, every other host belongs to the
	// other mode; with both, any third host belongs to neither.
	SandboxHost    string
	ProductionHost string

	// MaxUsersPerApp caps the end users one client app may have (0: no
	// cap); past it a request that asks for a new one gets 429. Users are
	// never deleted, so without a cap one app key could fill the store.
	MaxUsersPerApp int
	// UserRate is how many end users one client app may create per
	// minute (0: no limit), counted in the store over the last 60 seconds,
	// so it holds across nodes; UserRate of them may come at once. Past it:
	// 429 with the seconds until one more fits.
	UserRate int
}

// DefaultConfig is the spec's: one-hour tokens signed with the server's
// default algorithm, and a single /api/token that serves both modes; and
// ours: at most a million end users per app, created at most 600 a minute.
var DefaultConfig = Config{TTL: time.Hour, MaxUsersPerApp: 1_000_000, UserRate: 600}

// quota is the end-user quota of every client app.
func (c Config) quota() tokend.EndUserQuota {
	return tokend.EndUserQuota{Max: c.MaxUsersPerApp, Rate: c.UserRate, Window: time.Minute}
}

// Handler serves the dialect.
type Handler struct {
	engine  *grant.Engine
	profile *grant.Profile
	cfg     Config
}

// New returns the dialect's handler on engine.
func New(engine *grant.Engine, cfg Config) *Handler {
	cfg.SandboxPrefix = cleanPrefix(cfg.SandboxPrefix)
	cfg.ProductionPrefix = cleanPrefix(cfg.ProductionPrefix)
	cfg.SandboxHost = cleanHost(cfg.SandboxHost)
	cfg.ProductionHost = cleanHost(cfg.ProductionHost)
	return &Handler{engine: engine, profile: Profile(cfg), cfg: cfg}
}

// Profile is the shape of Taiki tokens (spec: "Claims"): typ JWT,
// token_type "access", client_app_id, taiki_user_id and mode beside the
// engine's iss, sub (the Taiki user id), aud, iat, exp and jti. The token
// names its client app in client_app_id only, so client_id, the username
// and roles are left out; the engine still finds the owning client through
// client_app_id for introspection and revocation. No session, no refresh
// token.
func Profile(cfg Config) *grant.Profile {
	return &grant.Profile{
		Dialect: dialect.Taiki, Alg: cfg.Alg, Type: token.TypeJWT, AccessTTL: cfg.TTL, NoSession: true,
		ClaimNames: cfg.names(),
		Decorate: func(c *token.Claims, u *tokend.User, client *tokend.ClientApp) {
			c.TokenType = "access"
			if client != nil {
				c.ClientAppID = client.ID
				c.Mode = mode(client)
			}
			if u != nil {
				c.TaikiUserID = u.ID
			}
			c.ClientID, c.Username, c.Roles = "", "", nil
		},
	}
}

// mode is a client app's mode; an app stored without one is a production
// app, as `tokend client add` makes it.
func mode(c *tokend.ClientApp) string {
	if c.Mode == "" {
		return tokend.ModeProduction
	}
	return c.Mode
}

// Register mounts the endpoint: /api/token, and <prefix>/api/token for
// every mode that has a prefix, each with and without a trailing slash.
func (h *Handler) Register(mux httpapi.Mux) {
	// path -> the mode it belongs to ("" for both)
	routes := map[string]string{Path: otherMode(h.cfg.SandboxPrefix, h.cfg.ProductionPrefix)}
	for _, m := range []struct{ prefix, mode string }{
		{h.cfg.SandboxPrefix, tokend.ModeSandbox},
		{h.cfg.ProductionPrefix, tokend.ModeProduction},
	} {
		if m.prefix == "" {
			continue
		}
		if !validPrefix(m.prefix) {
			panic("taiki: invalid " + m.mode + " prefix " + m.prefix)
		}
		p := m.prefix + Path
		if _, dup := routes[p]; dup {
			routes[p] = "" // both modes on one prefix: it tells nothing
		} else {
			routes[p] = m.mode
		}
	}
	for p, m := range routes {
		dialect.Handle(mux, dialect.Taiki, "POST", p, func(w http.ResponseWriter, r *http.Request) {
			h.serveToken(w, r, m)
		}, h.methodNotAllowed)
	}
}

func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "POST")
	h.write(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
}

type tokenBody struct {
	AccessToken string `json:"access_token"`
	TaikiUserID string `json:"taiki_user_id"`
}

// The seed's two error bodies, word for word.
const (
	msgNoKey     = "No API key or API secret provided"
	msgIncorrect = "Incorrect API key, API secret, or Taiki user ID provided"
)

// The answers to a request for a new end user past the app's quota (ours),
// in the format of the dialect's other 429.
const (
	msgUserCap  = "This API key has reached its limit of Taiki users"
	msgUserRate = "Too many new Taiki users for this API key, retry later"
)

// errIncorrect is every credential failure the dialect finds itself (a
// non-UUID key, a client without the grant, the wrong mode): the same 401
// as a wrong secret, so the answer tells nothing more.
var errIncorrect = &tokend.Error{Code: tokend.EINVALIDCLIENT, Message: msgIncorrect}

// serveToken serves POST [prefix]/api/token; pathMode is the mode the path
// belongs to ("" for none).
func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request, pathMode string) {
	w.Header().Set("Cache-Control", "no-store")
	body, err := dialect.ReadJSON(w, r, false)
	switch {
	case err == nil:
	case errors.Is(err, dialect.ErrTooLarge):
		h.write(w, http.StatusRequestEntityTooLarge, "invalid_request", "Request body too large")
		return
	default: // malformed JSON (a key named twice too), not an object, or not JSON at all
		h.write(w, http.StatusBadRequest, "invalid_request", msgNoKey)
		return
	}
	key, keyKind := body.Field("api_key")
	sec, secKind := body.Field("api_secret")
	if keyKind != dialect.String || secKind != dialect.String || key == "" || sec == "" {
		h.write(w, http.StatusBadRequest, "invalid_request", msgNoKey)
		return
	}
	userID, userKind := body.Field("taiki_user_id")
	if userKind == dialect.Other {
		h.write(w, http.StatusBadRequest, "invalid_request", "taiki_user_id must be a string")
		return
	}
	ctx := r.Context()
	// DESIGN.md: a non-UUID api_key is an incorrect key (counted like any).
	if uuid.Validate(key) != nil {
		h.fail(w, r, h.engine.RefuseClient(ctx))
		return
	}
	client, err := h.engine.AuthenticateClient(ctx, key, sec, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// DESIGN.md: an app needs the client_credentials grant to use the dialect.
	if !client.Allows(tokend.GrantClientCredentials) || !h.accepts(r, pathMode, mode(client)) {
		h.fail(w, r, errIncorrect)
		return
	}
	// Absent, null and "" all ask for a new end user.
	u, err := h.engine.EndUser(ctx, client, userID, h.cfg.quota())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	issued, err := h.engine.IssueForClient(r.Context(), h.profile, client, u, "")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	dialect.WriteJSON(w, http.StatusOK, tokenBody{AccessToken: issued.AccessToken, TaikiUserID: u.ID})
}

// accepts reports whether a client app of mode m may use this request
// (spec: "Modes", ours): a request that belongs to a mode, by its path
// (pathMode) or by its host, takes that mode's apps only; one that
// belongs to no mode takes both.
func (h *Handler) accepts(r *http.Request, pathMode, m string) bool {
	hostMode := otherMode(h.cfg.SandboxHost, h.cfg.ProductionHost)
	switch host := cleanHost(r.Host); {
	case host == "":
	case host == h.cfg.SandboxHost:
		hostMode = tokend.ModeSandbox
	case host == h.cfg.ProductionHost:
		hostMode = tokend.ModeProduction
	}
	if h.cfg.SandboxHost != "" && h.cfg.SandboxHost == h.cfg.ProductionHost {
		hostMode = "" // both modes on one host: it tells nothing
	}
	return (pathMode == "" || pathMode == m) && (hostMode == "" || hostMode == m)
}

// otherMode is the mode of a request that matches neither mode's setting
// (a prefix or a host): when only one mode has one, the other mode's;
// otherwise none ("").
func otherMode(sandbox, production string) string {
	switch {
	case sandbox != "" && production == "":
		return tokend.ModeProduction
	case production != "" && sandbox == "":
		return tokend.ModeSandbox
	}
	return ""
}

// fail renders an engine error: 401 invalid_client for any credential
// problem (wrong key or secret, disabled client, unknown or foreign user),
// 429 with Retry-After when locked out, rate limited or past the app's
// end-user quota, 503 when overloaded or the store is unreachable, 500
// otherwise.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch tokend.ErrorCode(err) {
	case tokend.EINVALIDCLIENT:
		h.write(w, http.StatusUnauthorized, "invalid_client", msgIncorrect)
	case tokend.ETOOMANY:
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
		msg := "Too many failed attempts, retry later"
		switch {
		case errors.Is(err, grant.ErrEndUserCap):
			msg = msgUserCap
		case errors.Is(err, grant.ErrEndUserRate):
			msg = msgUserRate
		}
		h.write(w, http.StatusTooManyRequests, "too_many_requests", msg)
	case tokend.EUNAVAILABLE:
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
		h.write(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable, retry later")
	default:
		h.engine.Logger().Error("taiki token request failed", "path", r.URL.Path, "err", err)
		h.write(w, http.StatusInternalServerError, "server_error", "internal error")
	}
}

// write renders the dialect's error body and counts the failure.
func (h *Handler) write(w http.ResponseWriter, status int, code, description string) {
	h.engine.CountFailure(dialect.Taiki, code)
	dialect.WriteJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// cleanPrefix gives a prefix one leading and no trailing slash; "" and
// "/" mean no prefix.
func cleanPrefix(p string) string {
	p = strings.Trim(strings.TrimSpace(p), "/")
	if p == "" {
		return ""
	}
	return "/" + p
}

// validPrefix accepts segments of unreserved URL characters only, so that
// a prefix can never become a pattern wildcard or an odd route.
func validPrefix(p string) bool {
	for _, seg := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, c := range seg {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)
			if !ok {
				return false
			}
		}
	}
	return true
}

// cleanHost lower-cases a host and drops its port and any trailing dot.
func cleanHost(h string) string {
	h = strings.TrimSpace(h)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	return strings.ToLower(h)
}

// names are the claim renames of c.
func (c Config) names() token.ClaimNames {
	n := token.ClaimNames{}
	if c.UserIDClaim != "" {
		n["taiki_user_id"] = c.UserIDClaim
	}
	if c.TokenTypeClaim != "" {
		n["token_type"] = c.TokenTypeClaim
	}
	return n
}

// Validate reports settings Register would refuse: a prefix that is not
// one or more plain path segments, and claim names that collide.
func (c Config) Validate() error {
	if err := c.names().Validate(); err != nil {
		return fmt.Errorf("taiki claim names: %w", err)
	}
	for name, p := range map[string]string{"sandbox": c.SandboxPrefix, "production": c.ProductionPrefix} {
		if p != "" && !validPrefix(cleanPrefix(p)) {
			return fmt.Errorf("taiki %s prefix %q: want path segments of letters, digits and -._~ (e.g. /sandbox)", name, p)
		}
	}
	if c.MaxUsersPerApp < 0 || c.UserRate < 0 {
		return errors.New("taiki end-user cap and rate must not be negative (0: none)")
	}
	return nil
}
