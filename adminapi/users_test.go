package adminapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tokend/tokend"
)

func TestUserLifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		r := e.must(201, "POST", "/admin/v1/users", `{"username": "alice", "password": "pw-of-alice", "roles": ["ops", "ops", "billing"], "claims": {"dept": "ops", "level": 3}}`)
		u := r.json()
		id := u["id"].(string)
		if loc := r.header.Get("Location"); loc != "/admin/v1/users/"+id {
			t.Errorf("Location %q", loc)
		}
		tag := r.header.Get("ETag")
		if !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) || len(tag) < 3 {
			t.Errorf("ETag %q", tag)
		}
		want := map[string]any{
			"id": id, "username": "alice", "roles": []any{"ops", "billing"}, "claims": map[string]any{"dept": "ops", "level": float64(3)},
			"disabled": false, "client_id": nil, "last_login_at": nil, "last_refresh_at": nil, "created_at": u["created_at"],
		}
		if !jsonEqual(u, want) {
			t.Errorf("created user %v, want %v", u, want)
		}
		if strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "pw-of-alice") {
			t.Fatalf("the response shows the password or its hash: %s", r.body)
		}

		got := e.must(200, "GET", "/admin/v1/users/"+id, "")
		if got.header.Get("ETag") != tag || !jsonEqual(got.json(), u) {
			t.Errorf("GET: %s %s, want the created user and its ETag", got.header.Get("ETag"), got.body)
		}
		if r := e.login("alice", "pw-of-alice", ""); r.status != 200 {
			t.Fatalf("login with the password given at creation: %d %s", r.status, r.body)
		}
		// The login moved last_login_at, and so the ETag.
		afterLogin := e.must(200, "GET", "/admin/v1/users/"+id, "")
		if afterLogin.json()["last_login_at"] == nil || afterLogin.header.Get("ETag") == tag {
			t.Errorf("after a login: %s, ETag %s", afterLogin.body, afterLogin.header.Get("ETag"))
		}
		tag = afterLogin.header.Get("ETag")

		t.Run("PATCH with a stale If-Match", func(t *testing.T) {
			stale := `"u1"`
			wantProblem(t, e.call("PATCH", "/admin/v1/users/"+id, `{"roles": []}`, "If-Match", stale), 412)
			wantProblem(t, e.call("PATCH", "/admin/v1/users/"+id, `{"roles": []}`, "If-Match", "W/"+tag), 412)
			wantProblem(t, e.call("DELETE", "/admin/v1/users/"+id, "", "If-Match", stale), 412)
			if r := e.must(200, "GET", "/admin/v1/users/"+id, ""); r.header.Get("ETag") != tag || len(r.json()["roles"].([]any)) != 2 {
				t.Fatalf("a refused PATCH changed the user: %s", r.body)
			}
		})
		t.Run("PATCH", func(t *testing.T) {
			r := e.must(200, "PATCH", "/admin/v1/users/"+id, `{"username": "alicia", "roles": [], "claims": {}, "disabled": true}`, "If-Match", `"x", `+tag)
			p := r.json()
			if p["username"] != "alicia" || len(p["roles"].([]any)) != 0 || len(p["claims"].(map[string]any)) != 0 || p["disabled"] != true {
				t.Errorf("patched user %v", p)
			}
			if nt := r.header.Get("ETag"); nt == tag || nt == "" {
				t.Errorf("ETag after PATCH %q (was %q)", nt, tag)
			} else {
				tag = nt
			}
			if g := e.must(200, "GET", "/admin/v1/users/"+id, ""); g.header.Get("ETag") != tag || !jsonEqual(g.json(), p) {
				t.Errorf("GET after PATCH: %s", g.body)
			}
			// A PATCH that changes nothing keeps the ETag; If-Match: * always matches.
			if r := e.must(200, "PATCH", "/admin/v1/users/"+id, `{"disabled": true}`, "If-Match", "*"); r.header.Get("ETag") != tag {
				t.Errorf("an empty change moved the ETag")
			}
			r = e.must(200, "PATCH", "/admin/v1/users/"+id, `{"username": "alice", "disabled": false}`)
			tag = r.header.Get("ETag")
		})
		t.Run("duplicate username", func(t *testing.T) {
			e.createUser(`{"username": "bob"}`)
			p := wantProblem(t, e.call("POST", "/admin/v1/users", `{"username": "bob"}`), 409)
			if !strings.Contains(p["detail"].(string), "bob") {
				t.Errorf("409 detail %v", p["detail"])
			}
			wantProblem(t, e.call("PATCH", "/admin/v1/users/"+id, `{"username": "bob"}`), 409)
			if r := e.must(200, "GET", "/admin/v1/users/"+id, ""); r.json()["username"] != "alice" {
				t.Errorf("a refused rename changed the user: %s", r.body)
			}
		})
		t.Run("DELETE", func(t *testing.T) {
			e.must(204, "DELETE", "/admin/v1/users/"+id, "", "If-Match", tag)
			wantProblem(t, e.call("GET", "/admin/v1/users/"+id, ""), 404)
			wantProblem(t, e.call("DELETE", "/admin/v1/users/"+id, ""), 404)
			wantProblem(t, e.call("PATCH", "/admin/v1/users/"+id, `{"roles": []}`), 404)
			wantProblem(t, e.call("PUT", "/admin/v1/users/"+id+"/password", `{"password": "x"}`), 404)
			wantProblem(t, e.call("GET", "/admin/v1/users/"+id+"/sessions", ""), 404)
			e.createUser(`{"username": "alice"}`) // the name is free again
		})
	})
}

// jsonEqual compares two decoded JSON values.
func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestUserChangesRefuseTokensAtOnce: deleting or disabling a user, or
// setting its password, refuses its tokens at introspection and /userinfo
// on the very next request.
func TestUserChangesRefuseTokensAtOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		for _, tc := range []struct {
			name, method, path, body string
			refreshDies              bool
		}{
			{"delete", "DELETE", "", "", true},
			{"disable", "PATCH", "", `{"disabled": true}`, true},
			{"password", "PUT", "/password", `{"password": "another"}`, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				name := "u-" + tc.name
				id := e.createUser(`{"username": "` + name + `", "password": "pw"}`)
				login := e.login(name, "pw", "")
				at, rt := login.str("access_token"), login.str("refresh_token")
				if !e.active(at) || e.userinfo(at).status != 200 {
					t.Fatal("the fresh token is not active")
				}
				e.must(map[string]int{"DELETE": 204, "PATCH": 200, "PUT": 204}[tc.method], tc.method, "/admin/v1/users/"+id+tc.path, tc.body)
				if e.active(at) {
					t.Error("the access token is still active at introspection")
				}
				if r := e.userinfo(at); r.status != 401 {
					t.Errorf("/userinfo: %d %s", r.status, r.body)
				}
				r := e.form("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {e.web}}, "", "")
				if r.status != 400 {
					t.Errorf("refresh: %d %s", r.status, r.body)
				}
			})
		}
		t.Run("enable again", func(t *testing.T) {
			id := e.createUser(`{"username": "carol", "password": "pw", "disabled": true}`)
			if r := e.login("carol", "pw", ""); r.status != 400 {
				t.Fatalf("a user created disabled logs in: %d", r.status)
			}
			e.must(200, "PATCH", "/admin/v1/users/"+id, `{"disabled": false}`)
			if r := e.login("carol", "pw", ""); r.status != 200 {
				t.Fatalf("login after enabling: %d %s", r.status, r.body)
			}
			e.must(204, "PUT", "/admin/v1/users/"+id+"/password", `{"password": "new-pw"}`)
			if r := e.login("carol", "pw", ""); r.status != 400 {
				t.Errorf("the old password still works: %d", r.status)
			}
			if r := e.login("carol", "new-pw", ""); r.status != 200 {
				t.Errorf("the new password does not work: %d %s", r.status, r.body)
			}
		})
	})
}

func TestUserSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		id := e.createUser(`{"username": "alice", "password": "pw"}`)
		var logins []resp
		for range 3 {
			logins = append(logins, e.login("alice", "pw", ""))
		}
		all := e.must(200, "GET", "/admin/v1/users/"+id+"/sessions", "").items()
		if len(all) != 3 {
			t.Fatalf("%d sessions, want 3", len(all))
		}
		for _, s := range all {
			if s["user_id"] != id || s["client_id"] != e.web || s["dialect"] != "oauth" || s["revoked_at"] != nil || s["expires_at"] == nil || s["rotated_at"] == nil {
				t.Errorf("session %v", s)
			}
		}
		first := e.must(200, "GET", "/admin/v1/users/"+id+"/sessions?limit=2", "")
		next := first.str("next_cursor")
		second := e.must(200, "GET", "/admin/v1/users/"+id+"/sessions?limit=2&cursor="+url.QueryEscape(next), "")
		if len(first.items()) != 2 || next == "" || len(second.items()) != 1 || second.json()["next_cursor"] != nil {
			t.Fatalf("pages: %s / %s", first.body, second.body)
		}
		if got := []any{first.items()[0]["id"], first.items()[1]["id"], second.items()[0]["id"]}; !slices.Equal(got, []any{all[0]["id"], all[1]["id"], all[2]["id"]}) {
			t.Errorf("pages %v, want %v in order", got, all)
		}

		// Revoking one session ends its tokens and leaves the others.
		sid := all[0]["id"].(string)
		e.must(204, "DELETE", "/admin/v1/sessions/"+sid, "")
		e.must(204, "DELETE", "/admin/v1/sessions/"+sid, "") // again: nothing to do
		wantProblem(t, e.call("DELETE", "/admin/v1/sessions/01900000-0000-7000-8000-000000000000", ""), 404)
		if left := e.must(200, "GET", "/admin/v1/users/"+id+"/sessions", "").items(); len(left) != 2 {
			t.Errorf("%d live sessions after revoking one, want 2", len(left))
		}
		var revoked, kept int
		for _, l := range logins {
			if e.active(l.str("access_token")) {
				kept++
			} else {
				revoked++
			}
		}
		if revoked != 1 || kept != 2 {
			t.Errorf("%d access tokens refused and %d active, want 1 and 2", revoked, kept)
		}
	})
}

// TestIfMatchIsAtomic sends many PATCHes at once, all with the same
// If-Match: exactly one may win, the others get 412, whatever the
// interleaving.
func TestIfMatchIsAtomic(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		r := e.must(201, "POST", "/admin/v1/users", `{"username": "alice"}`)
		id, tag := r.str("id"), r.header.Get("ETag")
		const n = 12
		statuses := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				statuses[i] = e.call("PATCH", "/admin/v1/users/"+id, fmt.Sprintf(`{"roles": ["r%d"]}`, i), "If-Match", tag).status
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for _, s := range statuses {
			switch s {
			case 200:
				won++
			case 412:
			default:
				t.Fatalf("statuses %v", statuses)
			}
		}
		if won != 1 {
			t.Fatalf("%d PATCHes with the same If-Match won: %v", won, statuses)
		}
	})
}
