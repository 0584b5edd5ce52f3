package adminapi_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// TestEveryRouteEveryToken sends every route a request with no token, a
// forged one, a revoked one, one without an admin scope, one with the read
// scope and one with the admin scope.
func TestEveryRouteEveryToken(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		uid := e.createUser(`{"username": "alice", "password": "pw-of-alice"}`)
		sid := e.login("alice", "pw-of-alice", "").json()["refresh_token"]
		if sid == nil {
			t.Fatal("no login")
		}
		sessions := e.must(200, "GET", "/admin/v1/users/"+uid+"/sessions", "").items()
		if len(sessions) != 1 {
			t.Fatalf("sessions %v", sessions)
		}
		sessionID := sessions[0]["id"].(string)
		cid := e.must(201, "POST", "/admin/v1/clients", `{"name": "billing"}`).str("id")

		// A revoked admin token.
		m := e.manager()
		rid, rsec := e.addClient(m, "revoked", []string{grant.ScopeAdmin})
		revoked := e.clientToken(rid, rsec, "")
		if r := e.form("/oauth2/revoke", url.Values{"token": {revoked}}, rid, rsec); r.status != 200 {
			t.Fatalf("revoke: %d", r.status)
		}

		routes := []struct {
			method, path, body string
			ok                 int // the admin token's status
		}{
			{"GET", "/admin/v1/users", "", 200},
			{"POST", "/admin/v1/users", `{"username": "bob"}`, 201},
			{"GET", "/admin/v1/users/" + uid, "", 200},
			{"PATCH", "/admin/v1/users/" + uid, `{"roles": ["ops"]}`, 200},
			{"PUT", "/admin/v1/users/" + uid + "/password", `{"password": "new"}`, 204},
			{"GET", "/admin/v1/users/" + uid + "/sessions", "", 200},
			{"DELETE", "/admin/v1/sessions/" + sessionID, "", 204},
			{"GET", "/admin/v1/clients", "", 200},
			{"POST", "/admin/v1/clients", `{"name": "shop"}`, 201},
			{"GET", "/admin/v1/clients/" + cid, "", 200},
			{"PATCH", "/admin/v1/clients/" + cid, `{"name": "invoicing"}`, 200},
			{"POST", "/admin/v1/clients/" + cid + "/secret", `{"overlap": 60}`, 200},
			{"GET", "/admin/v1/keys", "", 200},
			{"POST", "/admin/v1/keys", `{"alg": "EdDSA"}`, 201},
			{"GET", "/admin/v1/audit", "", 200},
			{"DELETE", "/admin/v1/clients/" + cid, "", 204},
			{"DELETE", "/admin/v1/users/" + uid, "", 204},
		}
		for _, rt := range routes {
			name := rt.method + " " + strings.NewReplacer("/admin/v1/", "", uid, "{id}", cid, "{id}", sessionID, "{id}").Replace(rt.path)
			t.Run(name, func(t *testing.T) {
				for _, tc := range []struct {
					kind, tok string
				}{{"none", ""}, {"forged", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}, {"revoked", revoked}} {
					r := e.do(rt.method, rt.path, tc.tok, rt.body, nil)
					wantProblem(t, r, 401)
					if got := r.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
						t.Errorf("%s token: WWW-Authenticate %q", tc.kind, got)
					}
				}
				needed := grant.ScopeAdmin
				if rt.method == "GET" {
					needed = grant.ScopeAdminRead
				}
				r := e.do(rt.method, rt.path, e.other, rt.body, nil)
				wantProblem(t, r, 403)
				if got, want := r.header.Get("WWW-Authenticate"), `Bearer error="insufficient_scope", scope="`+needed+`"`; got != want {
					t.Errorf("token without an admin scope: WWW-Authenticate %q, want %q", got, want)
				}
				r = e.do(rt.method, rt.path, e.reader, rt.body, nil)
				if rt.method == "GET" {
					if r.status != rt.ok {
						t.Errorf("read scope: %d %s, want %d", r.status, r.body, rt.ok)
					}
				} else {
					wantProblem(t, r, 403)
					if got := r.header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope", scope="tokend.admin"` {
						t.Errorf("read scope writing: WWW-Authenticate %q", got)
					}
				}
				if r := e.call(rt.method, rt.path, rt.body); r.status != rt.ok {
					t.Errorf("admin scope: %d %s, want %d", r.status, r.body, rt.ok)
				}
			})
		}
	})
}

// wantProblem fails t unless r is a problem document with status.
func wantProblem(t *testing.T, r resp, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d (%s), want %d", r.status, r.body, status)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	p := r.json()
	if p["status"] != float64(status) || p["title"] == "" || p["type"] == nil {
		t.Errorf("problem %v", p)
	}
	return p
}

// TestRoutesAndMethods: an unknown path under /admin/v1/ is a 404 problem,
// a known path with another method a 405 with Allow, before any token is
// looked at.
func TestRoutesAndMethods(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/admin/v1/nothing", 404, ""},
		{"GET", "/admin/v1/users/x/y/z", 404, ""},
		{"PUT", "/admin/v1/users", 405, "GET, POST"},
		{"POST", "/admin/v1/users/x", 405, "GET, PATCH, DELETE"},
		{"GET", "/admin/v1/users/x/password", 405, "PUT"},
		{"GET", "/admin/v1/sessions/x", 405, "DELETE"},
		{"DELETE", "/admin/v1/keys", 405, "GET, POST"},
		{"POST", "/admin/v1/audit", 405, "GET"},
		{"GET", "/admin/v1/clients/x/secret", 405, "POST"},
	} {
		for _, tok := range []string{"", e.admin} {
			r := e.do(tc.method, tc.path, tok, "", nil)
			wantProblem(t, r, tc.status)
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
			}
		}
	}
	if r := e.call("GET", "/admin/v1/users/"+"01900000-0000-7000-8000-000000000000", ""); r.status != 404 {
		t.Errorf("unknown user: %d", r.status)
	}
}
