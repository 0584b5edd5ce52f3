package console

import (
	"net/http"

	"github.com/tokend/tokend/httpapi"
)

// Register mounts the console's routes on mux. Every answer carries the
// security headers (a strict Content-Security-Policy among them); every
// POST also passes net/http's cross-origin protection (Sec-Fetch-Site and
// Origin) besides its CSRF token.
func (c *Console) Register(mux httpapi.Mux) {
	get := func(pattern string, h http.HandlerFunc) { mux.Handle("GET "+pattern, c.headers(h)) }
	post := func(pattern string, h http.HandlerFunc) { mux.Handle("POST "+pattern, c.headers(c.cop.Handler(h))) }

	get("/console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	})
	get("/console/{$}", c.authed(c.overview))
	get("/console/static/{file}", c.static)

	get("/console/signin", c.signinPage)
	post("/console/signin", c.signin)
	post("/console/signout", c.authed(c.signout))
	get("/console/setup", c.setupPage)
	post("/console/setup", c.setup)

	get("/console/users", c.authed(c.users))
	post("/console/users", c.authed(c.createUser))
	get("/console/users/new", c.authed(c.newUser))
	get("/console/users/{id}", c.authed(c.user))
	post("/console/users/{id}", c.authed(c.updateUser))
	post("/console/users/{id}/disable", c.authed(c.disableUser(true)))
	post("/console/users/{id}/enable", c.authed(c.disableUser(false)))
	post("/console/users/{id}/password", c.authed(c.setPassword))
	post("/console/users/{id}/delete", c.authed(c.deleteUser))
	post("/console/sessions/{id}/revoke", c.authed(c.revokeSession))

	get("/console/clients", c.authed(c.clients))
	post("/console/clients", c.authed(c.createClient))
	get("/console/clients/new", c.authed(c.newClient))
	get("/console/clients/{id}", c.authed(c.client))
	post("/console/clients/{id}", c.authed(c.updateClient))
	post("/console/clients/{id}/secret", c.authed(c.rotateSecret))
	post("/console/clients/{id}/disable", c.authed(c.disableClient(true)))
	post("/console/clients/{id}/enable", c.authed(c.disableClient(false)))
	post("/console/clients/{id}/delete", c.authed(c.deleteClient))

	get("/console/keys", c.authed(c.keys))
	post("/console/keys", c.authed(c.rotateKey))
	get("/console/audit", c.authed(c.audit))
}

// headers sets the security headers of every console answer.
func (c *Console) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		next.ServeHTTP(w, r)
	})
}
