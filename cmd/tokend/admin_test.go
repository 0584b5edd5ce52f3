package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// admin sends an admin API request with a bearer token to the server.
func (s *server) admin(method, path, tok, body string) httpResult {
	req, _ := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return do(req)
}

// adminToken creates a client app allowed tokend.admin with the CLI, as
// the README shows, and returns a client_credentials token of it.
func (s *server) adminToken(t *testing.T) string {
	t.Helper()
	var m map[string]string
	json.Unmarshal([]byte(s.cli(t, "", "client", "add", "ops", "--grant", "client_credentials", "--scope", "tokend.admin", "--json")), &m)
	r := s.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, m["client_id"], m["client_secret"])
	if r.status != 200 || r.str("scope") != "tokend.admin" {
		t.Fatalf("admin token: %d %v %v", r.status, r.body, r.err)
	}
	return r.str("access_token")
}

// TestAdminAPISwitch: tokend serve serves the admin API unless
// --admin-api=false, and then every /admin/v1/ path is a 404.
func TestAdminAPISwitch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	on := startServer(t, t.TempDir())
	tok := on.adminToken(t)
	if r := on.admin("GET", "/admin/v1/users", "", ""); r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
		t.Errorf("without a token: %d %v", r.status, r.header)
	}
	if r := on.admin("POST", "/admin/v1/users", tok, `{"username": "alice"}`); r.status != 201 {
		t.Errorf("with the admin token: %d %v", r.status, r.body)
	}

	off := startServer(t, t.TempDir(), "--admin-api=false")
	tok = off.adminToken(t)
	for _, rt := range []struct{ method, path string }{
		{"GET", "/admin/v1/users"}, {"POST", "/admin/v1/users"}, {"GET", "/admin/v1/keys"}, {"DELETE", "/admin/v1/sessions/x"}, {"GET", "/admin/v1/"},
	} {
		for _, token := range []string{"", tok} {
			if r := off.admin(rt.method, rt.path, token, `{}`); r.status != 404 {
				t.Errorf("--admin-api=false: %s %s: %d", rt.method, rt.path, r.status)
			}
		}
	}
	if r := off.get("/healthz"); r.status != 200 {
		t.Errorf("the rest still serves: %d", r.status)
	}
}

// TestMultiNodeAdminAPI deletes a user and disables a client through the
// admin API of one node: the other node refuses their tokens within a
// second.
func TestMultiNodeAdminAPI(t *testing.T) {
	dsn := pgDSN(t)
	a := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn)
	b := startServer(t, t.TempDir(), "--issuer", clusterIssuer, "--db", dsn)
	f := provision(t, a)
	tok := a.adminToken(t)
	introspect := func(s *server, token string) any {
		return s.post("/oauth2/introspect", url.Values{"token": {token}}, f.clientID, f.clientSecret).body["active"]
	}

	t.Run("user deleted on a", func(t *testing.T) {
		login := b.login(t, f)
		at := login.str("access_token")
		if introspect(b, at) != true {
			t.Fatal("the fresh token is not active on b")
		}
		users := a.admin("GET", "/admin/v1/users?q=alice", tok, "")
		items, _ := users.body["items"].([]any)
		if users.status != 200 || len(items) != 1 {
			t.Fatalf("find alice: %d %v", users.status, users.body)
		}
		id := items[0].(map[string]any)["id"].(string)
		if r := a.admin("DELETE", "/admin/v1/users/"+id, tok, ""); r.status != 204 {
			t.Fatalf("delete: %d %v", r.status, r.body)
		}
		start := time.Now()
		eventually(t, "the deletion on b", time.Second, func() bool { return introspect(b, at) == false })
		t.Logf("b refused the deleted user's token after %s", time.Since(start).Round(time.Millisecond))
		req, _ := http.NewRequest("GET", "http://"+b.addr+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+at)
		if r := do(req); r.status != 401 {
			t.Errorf("/userinfo on b: %d", r.status)
		}
		if r := b.refresh(login.str("refresh_token"), f.publicID); r.status != 400 {
			t.Errorf("refresh on b: %d", r.status)
		}
	})
	t.Run("client disabled on a", func(t *testing.T) {
		cc := b.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, f.clientSecret)
		if cc.status != 200 {
			t.Fatalf("client_credentials on b: %d", cc.status)
		}
		if r := a.admin("PATCH", "/admin/v1/clients/"+f.clientID, tok, `{"disabled": true}`); r.status != 200 {
			t.Fatalf("disable: %d %v", r.status, r.body)
		}
		eventually(t, "the client disabled on b", time.Second, func() bool {
			return b.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, f.clientSecret).status == 401
		})
	})
}
