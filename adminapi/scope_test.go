package adminapi_test

import (
	"net/url"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// TestAdminScopeGranting: who gets the admin scopes, and that taking a
// role or a scope away refuses the tokens that carry it at once.
func TestAdminScopeGranting(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		root := e.createUser(`{"username": "root", "password": "pw", "roles": ["tokend.admin"]}`)
		e.createUser(`{"username": "joe", "password": "pw", "roles": ["ops"]}`)
		scopeOf := func(r resp) string {
			t.Helper()
			if r.status != 200 {
				t.Fatalf("login: %d %s", r.status, r.body)
			}
			return r.str("scope")
		}
		// No scope asked: the web client's other scopes, never an admin one.
		if s := scopeOf(e.login("root", "pw", "")); s != "profile" {
			t.Errorf("root without asking got %q", s)
		}
		if s := scopeOf(e.login("root", "pw", "tokend.admin.read profile")); s != "tokend.admin.read profile" {
			t.Errorf("root asking got %q", s)
		}
		for _, scope := range []string{"tokend.admin", "tokend.admin.read"} {
			r := e.login("joe", "pw", scope)
			if r.status != 400 || r.str("error") != "invalid_scope" {
				t.Errorf("joe asking for %s: %d %s", scope, r.status, r.body)
			}
		}
		if s := scopeOf(e.login("joe", "pw", "")); s != "profile" {
			t.Errorf("joe without asking got %q", s)
		}
		// A client that does not list the scope cannot pass it on.
		narrow, _, err := e.manager().CreateClient(t.Context(), grant.NewClient{Name: "narrow", Public: true, Scopes: []string{"profile"}})
		if err != nil {
			t.Fatal(err)
		}
		r := e.form("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"root"}, "password": {"pw"}, "client_id": {narrow.ID}, "scope": {"tokend.admin"}}, "", "")
		if r.status != 400 || r.str("error") != "invalid_scope" {
			t.Errorf("root through a client without the scope: %d %s", r.status, r.body)
		}
		// client_credentials gets what the client's scopes list.
		if s := e.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, e.adminClient, e.adminSecret).str("scope"); s != "tokend.admin tokend.admin.read" {
			t.Errorf("client_credentials of the admin client got %q", s)
		}
		if r := e.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"tokend.admin"}}, e.introID, e.introSecret); r.status != 400 {
			t.Errorf("a client without the scope asking for it: %d %s", r.status, r.body)
		}

		admin := e.login("root", "pw", "tokend.admin").str("access_token")
		reader := e.login("root", "pw", "tokend.admin.read").str("access_token")
		if r := e.do("GET", "/admin/v1/users", admin, "", nil); r.status != 200 {
			t.Fatalf("root's admin token: %d", r.status)
		}
		if r := e.do("POST", "/admin/v1/users", reader, `{"username": "x"}`, nil); r.status != 403 {
			t.Errorf("root's read token writing: %d", r.status)
		}
		if r := e.do("GET", "/admin/v1/users", reader, "", nil); r.status != 200 {
			t.Errorf("root's read token reading: %d", r.status)
		}

		// Taking the role away refuses root's tokens at once.
		e.must(200, "PATCH", "/admin/v1/users/"+root, `{"roles": []}`)
		for _, tok := range []string{admin, reader} {
			if r := e.do("GET", "/admin/v1/users", tok, "", nil); r.status != 403 {
				t.Errorf("a token of a user without the role: %d %s", r.status, r.body)
			}
		}
		// Taking a scope from a client refuses its tokens at once.
		readerClient := e.must(201, "POST", "/admin/v1/clients", `{"name": "ro", "scopes": ["tokend.admin.read"]}`)
		tok := e.clientToken(readerClient.str("id"), readerClient.str("client_secret"), "")
		if r := e.do("GET", "/admin/v1/keys", tok, "", nil); r.status != 200 {
			t.Fatalf("reader client: %d", r.status)
		}
		e.must(200, "PATCH", "/admin/v1/clients/"+readerClient.str("id"), `{"scopes": []}`)
		if r := e.do("GET", "/admin/v1/keys", tok, "", nil); r.status != 403 {
			t.Errorf("a token whose client lost the scope: %d", r.status)
		}
	})
}
