// Package adminapi serves tokend's admin API under /admin/v1/: users,
// client apps, sessions, signing keys and the audit trail, for operators
// and their tools (ADMIN-API.md is the contract). It is a thin layer over
// the engine's grant.Manager, which the command line calls too: this
// package authenticates the caller (a bearer access token of this tokend
// with an admin scope), reads requests strictly, and renders objects and
// RFC 9457 problem details; every rule about the objects lives in the
// engine.
package adminapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
)

// Prefix is where the admin API is served.
const Prefix = "/admin/v1/"

// API serves the admin API. Mount it with Register (it is an
// httpapi.Routes).
type API struct {
	// Engine checks the callers' access tokens.
	Engine *grant.Engine
	// Manager does the work; New uses the engine's.
	Manager *grant.Manager
	// Log receives internal errors; nil: the engine's logger.
	Log *slog.Logger
	// ImportMaxBytes caps the body of an import; 0: MaxImportBytes.
	ImportMaxBytes int64
}

// New returns the admin API of an engine.
func New(e *grant.Engine) *API {
	return &API{Engine: e, Manager: e.Manager(), Log: e.Logger()}
}

// access is what a route needs of the caller's scopes.
type access bool

const (
	read  access = false // tokend.admin.read or tokend.admin
	write access = true  // tokend.admin
)

// handler serves one route; it returns an error instead of writing it,
// and the error becomes a problem document.
type handler func(w http.ResponseWriter, r *http.Request) error

// Register mounts every route on mux, with a 405 (and its Allow header)
// for the other methods of each path and a 404 problem for any other path
// under Prefix.
func (a *API) Register(mux httpapi.Mux) {
	if a.Log == nil {
		a.Log = a.Engine.Logger()
	}
	type route struct {
		method string
		need   access
		h      handler
	}
	paths := []struct {
		path   string
		routes []route
	}{
		{"/admin/v1/users", []route{{"GET", read, a.listUsers}, {"POST", write, a.createUser}}},
		{"/admin/v1/users:import", []route{{"POST", write, a.importUsers}}},
		{"/admin/v1/users/{id}", []route{{"GET", read, a.getUser}, {"PATCH", write, a.patchUser}, {"DELETE", write, a.deleteUser}}},
		{"/admin/v1/users/{id}/password", []route{{"PUT", write, a.setPassword}}},
		{"/admin/v1/users/{id}/sessions", []route{{"GET", read, a.listUserSessions}}},
		{"/admin/v1/sessions/{id}", []route{{"DELETE", write, a.revokeSession}}},
		{"/admin/v1/clients", []route{{"GET", read, a.listClients}, {"POST", write, a.createClient}}},
		{"/admin/v1/clients/{id}", []route{{"GET", read, a.getClient}, {"PATCH", write, a.patchClient}, {"DELETE", write, a.deleteClient}}},
		{"/admin/v1/clients/{id}/secret", []route{{"POST", write, a.rotateSecret}}},
		{"/admin/v1/keys", []route{{"GET", read, a.listKeys}, {"POST", write, a.rotateKey}}},
		{"/admin/v1/audit", []route{{"GET", read, a.listAudit}}},
	}
	for _, p := range paths {
		var allow []string
		for _, rt := range p.routes {
			mux.HandleFunc(rt.method+" "+p.path, a.serve(rt.need, rt.h))
			allow = append(allow, rt.method)
		}
		mux.HandleFunc(p.path, a.methodNotAllowed(strings.Join(allow, ", ")))
	}
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		a.problem(w, r, errNoRoute)
	})
}

var errNoRoute = tokend.Errorf(tokend.ENOTFOUND, "no such endpoint")

// serve authorizes a request for need and runs h.
func (a *API) serve(need access, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ctx, err := a.authorize(r.Context(), r, need)
		if err == nil {
			err = h(w, r.WithContext(ctx))
		}
		if err != nil {
			a.problem(w, r, err)
		}
	}
}

func (a *API) methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		a.problem(w, r, errMethod)
	}
}

// authorize checks the request's bearer token with the engine (signature,
// issuer, audience, expiry, revocation, its user or client still enabled)
// and the admin scopes its holder has now, and returns a context naming
// the caller as the actor of the changes it makes.
func (a *API) authorize(ctx context.Context, r *http.Request, need access) (context.Context, error) {
	raw, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return nil, &tokend.Error{Code: tokend.EINVALIDTOKEN, Message: "a bearer access token is required"}
	}
	ctx = grant.WithDialect(ctx, grant.DialectAdmin)
	c, err := a.Engine.CheckAccess(ctx, raw)
	if err != nil {
		return nil, err
	}
	scopes, err := a.Engine.AdminScopes(ctx, c)
	if err != nil {
		return nil, err
	}
	has := func(s string) bool {
		for _, v := range scopes {
			if v == s {
				return true
			}
		}
		return false
	}
	switch {
	case need == write && !has(grant.ScopeAdmin):
		return nil, scopeError{grant.ScopeAdmin}
	case need == read && !has(grant.ScopeAdmin) && !has(grant.ScopeAdminRead):
		return nil, scopeError{grant.ScopeAdminRead}
	}
	actor := "user:" + c.Subject
	if c.ClientID != "" && c.Subject == c.ClientID {
		actor = "client:" + c.ClientID
	}
	return grant.WithActor(ctx, actor), nil
}

// bearer extracts the token of an "Authorization: Bearer" header (RFC
// 6750 §2.1); the scheme is case-insensitive.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// scopeError refuses a valid token that lacks the scope a route needs.
type scopeError struct{ scope string }

func (e scopeError) Error() string { return "insufficient scope: " + e.scope + " is required" }
