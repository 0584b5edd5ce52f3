package verify

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
)

// MiddlewareOptions configure Middleware.
type MiddlewareOptions struct {
	// Scopes must all be in the token's scope (RFC 6749 §3.3); with none,
	// any valid token passes. Give each route its own middleware for its
	// own scopes.
	Scopes []string
	// Realm names the protected resource in WWW-Authenticate (default "api").
	Realm string
	// Logger, if set, logs every refused request at debug level, with
	// why (never the token).
	Logger *slog.Logger
}

type claimsKey struct{}

// ClaimsFrom returns the claims Middleware put in a request's context.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Middleware guards a handler with v: it takes the bearer token from the
// Authorization header (RFC 6750 §2.1; the query and body forms are not
// accepted), verifies it, checks opts.Scopes, and calls next with the
// claims in the request's context (ClaimsFrom). A refused request gets the
// answer of RFC 6750 §3: 401 with WWW-Authenticate: Bearer (and
// error="invalid_token" when a token was given but is not valid), 400
// invalid_request for a malformed header, 403 insufficient_scope when a
// scope is missing; with a small JSON body saying the same.
func Middleware(v *Verifier, opts MiddlewareOptions) func(http.Handler) http.Handler {
	realm := opts.Realm
	if realm == "" {
		realm = "api"
	}
	scope := strings.Join(opts.Scopes, " ")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, problem := bearerToken(r)
			switch problem {
			case "":
			case "missing":
				challenge(w, http.StatusUnauthorized, realm, scope, "", "")
				return
			default:
				opts.refused(r, problem, nil)
				challenge(w, http.StatusBadRequest, realm, scope, "invalid_request", problem)
				return
			}
			c, err := v.Verify(r.Context(), raw)
			if err != nil {
				opts.refused(r, "invalid token", err)
				challenge(w, http.StatusUnauthorized, realm, scope, "invalid_token", describe(err))
				return
			}
			for _, s := range opts.Scopes {
				if !c.HasScope(s) {
					opts.refused(r, "insufficient scope", nil)
					challenge(w, http.StatusForbidden, realm, scope, "insufficient_scope", "the token lacks a required scope")
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
		})
	}
}

func (o *MiddlewareOptions) refused(r *http.Request, why string, err error) {
	if o.Logger != nil {
		o.Logger.Debug("request refused", "method", r.Method, "path", r.URL.Path, "why", why, "err", err)
	}
}

// bearerToken reads the token of an Authorization: Bearer header; problem
// is "missing" when the request carries none, or says what is wrong with
// the header.
func bearerToken(r *http.Request) (token, problem string) {
	hs := r.Header.Values("Authorization")
	if len(hs) == 0 {
		return "", "missing"
	}
	if len(hs) > 1 {
		return "", "more than one Authorization header"
	}
	scheme, tok, _ := strings.Cut(hs[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", "missing" // another scheme: no bearer token given (§3)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", "malformed bearer token"
	}
	return tok, ""
}

// describe is a client-safe description of why a token was refused.
func describe(err error) string {
	for _, e := range []error{ErrExpired, ErrRevoked, ErrAudience, ErrIssuer, ErrType, ErrNotYetValid, ErrAlgorithm, ErrUnknownKey, ErrSignature, ErrMalformed} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "invalid token"
}

// challenge writes a refusal (RFC 6750 §3). Values put in the header are
// ours, never the client's, and hold no quote or backslash.
func challenge(w http.ResponseWriter, status int, realm, scope, code, desc string) {
	h := `Bearer realm="` + quoteSafe(realm) + `"`
	if code != "" {
		h += `, error="` + code + `"`
	}
	if desc != "" {
		h += `, error_description="` + quoteSafe(desc) + `"`
	}
	if scope != "" && (code == "" || code == "insufficient_scope") {
		h += `, scope="` + quoteSafe(scope) + `"`
	}
	w.Header().Set("WWW-Authenticate", h)
	w.Header().Set("Cache-Control", "no-store")
	body := map[string]string{"error": code, "error_description": desc}
	if code == "" {
		body = map[string]string{"error": "unauthorized", "error_description": "a bearer token is required"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// quoteSafe keeps the characters RFC 6750 §3 allows in a quoted value.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
