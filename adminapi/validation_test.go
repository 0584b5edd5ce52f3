package adminapi_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

// TestValidation sends every kind of bad input: each gets a 400 problem
// naming every bad field at once (or 413, 415), never a 500, and changes
// nothing.
func TestValidation(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		uid := e.createUser(`{"username": "alice"}`)
		e.createUser(`{"username": "bob"}`)
		cid := e.must(201, "POST", "/admin/v1/clients", `{"name": "billing"}`).str("id")
		pub := e.must(201, "POST", "/admin/v1/clients", `{"name": "spa", "public": true}`).str("id")
		bigClaims := `{"username": "big", "claims": {"blob": "` + strings.Repeat("x", 4100) + `"}}`
		users, clients := "/admin/v1/users", "/admin/v1/clients"
		user, client := users+"/"+uid, clients+"/"+cid

		tests := []struct {
			name, method, path, body string
			fields                   []string // in any order; nil: a 400 without field errors
		}{
			{"no username", "POST", users, `{}`, []string{"username"}},
			{"every field wrongly typed", "POST", users, `{"username": 5, "password": true, "roles": "ops", "claims": [], "disabled": "yes", "extra": 1}`,
				[]string{"username", "password", "roles", "claims", "disabled", "extra"}},
			{"nulls are wrong types", "POST", users, `{"username": null, "roles": null, "claims": null}`, []string{"username", "roles", "claims"}},
			{"bad values", "POST", users, `{"username": " padded ", "password": "", "roles": ["a b", "", "ok", 7], "claims": {"iss": "x", "sub": 1, "ok": 2}}`,
				[]string{"username", "password", "roles", "claims.iss", "claims.sub"}},
			{"role list wrong inside", "POST", users, `{"username": "x", "roles": ["a b", ""]}`, []string{"roles[0]", "roles[1]"}},
			{"reserved claims", "POST", users, `{"username": "x", "claims": {"scope": "all", "roles": [], "preferred_username": "y", "jti": "z"}}`,
				[]string{"claims.jti", "claims.preferred_username", "claims.roles", "claims.scope"}},
			{"claims over 4 KiB", "POST", users, bigClaims, []string{"claims"}},
			{"control character in username", "POST", users, `{"username": "a\u0000b"}`, []string{"username"}},
			{"NUL in claims", "POST", users, `{"username": "x", "claims": {"a": {"b": "c\u0000"}}}`, []string{"claims"}},
			{"NUL in a claim name", "POST", users, `{"username": "x", "claims": {"a\u0000": 1}}`, []string{"claims"}},
			{"long username", "POST", users, `{"username": "` + strings.Repeat("n", 201) + `"}`, []string{"username"}},
			{"too many roles", "POST", users, `{"username": "x", "roles": [` + strings.Repeat(`"r",`, 40) + `"r"]}`, []string{"roles"}},
			{"duplicate key", "POST", users, `{"username": "a", "username": "b"}`, []string{"username"}},
			{"duplicate key in claims", "POST", users, `{"username": "a", "claims": {"x": 1, "y": {"z": 1, "z": 2}}}`, []string{"claims.y.z"}},
			{"malformed JSON", "POST", users, `{"username": "a",}`, nil},
			{"two objects", "POST", users, `{"username": "a"} {}`, nil},
			{"an array", "POST", users, `[{"username": "a"}]`, nil},
			{"a string", "POST", users, `"alice"`, nil},
			{"PATCH unknown field", "PATCH", user, `{"password": "x", "id": "y"}`, []string{"password", "id"}},
			{"PATCH bad values", "PATCH", user, `{"username": "", "roles": [""], "claims": {"exp": 1}, "disabled": 1}`,
				[]string{"username", "roles[0]", "claims.exp", "disabled"}},
			{"password missing", "PUT", user + "/password", `{}`, []string{"password"}},
			{"password empty", "PUT", user + "/password", `{"password": ""}`, []string{"password"}},
			{"password too long", "PUT", user + "/password", `{"password": "` + strings.Repeat("p", 1025) + `"}`, []string{"password"}},
			{"password not a string", "PUT", user + "/password", `{"password": 12345678, "old": "x"}`, []string{"password", "old"}},
			{"client every field", "POST", clients, `{"name": "", "grants": ["implicit"], "scopes": ["a b"], "mode": "staging", "access_ttl": -1, "public": "no"}`,
				[]string{"name", "grants[0]", "scopes[0]", "mode", "access_ttl", "public"}},
			{"client types", "POST", clients, `{"name": 1, "grants": "password", "scopes": [1], "mode": false, "access_ttl": "60"}`,
				[]string{"name", "grants", "scopes", "mode", "access_ttl"}},
			{"access_ttl not whole", "POST", clients, `{"name": "x", "access_ttl": 1.5}`, []string{"access_ttl"}},
			{"access_ttl too long", "POST", clients, `{"name": "x", "access_ttl": 86401}`, []string{"access_ttl"}},
			{"access_ttl huge", "POST", clients, `{"name": "x", "access_ttl": 1e30}`, []string{"access_ttl"}},
			{"public client_credentials", "POST", clients, `{"name": "x", "public": true, "grants": ["password", "client_credentials"]}`, []string{"grants[1]"}},
			{"client PATCH public", "PATCH", client, `{"public": true, "secret": "x"}`, []string{"public", "secret"}},
			{"client PATCH values", "PATCH", client, `{"name": " x", "grants": [], "mode": "", "access_ttl": 999999, "disabled": "true"}`,
				[]string{"name", "grants", "mode", "access_ttl", "disabled"}},
			{"public client PATCH grants", "PATCH", clients + "/" + pub, `{"grants": ["client_credentials"], "name": 3}`, []string{"grants[0]", "name"}},
			{"secret of a public client", "POST", clients + "/" + pub + "/secret", `{}`, nil},
			{"overlap", "POST", client + "/secret", `{"overlap": -1}`, []string{"overlap"}},
			{"overlap type", "POST", client + "/secret", `{"overlap": "1h", "now": true}`, []string{"overlap", "now"}},
			{"key without alg", "POST", "/admin/v1/keys", `{}`, []string{"alg"}},
			{"key values", "POST", "/admin/v1/keys", `{"alg": "HS256", "prepublish": -5}`, []string{"alg", "prepublish"}},
			{"key types", "POST", "/admin/v1/keys", `{"alg": 256, "prepublish": "1h"}`, []string{"alg", "prepublish"}},
			{"limit zero", "GET", users + "?limit=0", "", []string{"limit"}},
			{"limit over", "GET", users + "?limit=1001", "", []string{"limit"}},
			{"limit text", "GET", clients + "?limit=ten", "", []string{"limit"}},
			{"limit twice", "GET", users + "?limit=1&limit=2", "", []string{"limit"}},
			{"cursor garbage", "GET", users + "?cursor=%25%25", "", []string{"cursor"}},
			{"cursor of another list", "GET", users + "?cursor=" + url.QueryEscape(cursorOf(t, e, clients)), "", []string{"cursor"}},
			{"everything wrong in a list", "GET", users + "?limit=-1&cursor=x&disabled=maybe", "", []string{"limit", "cursor", "disabled"}},
			{"sessions limit", "GET", user + "/sessions?limit=5000", "", []string{"limit"}},
			{"audit times", "GET", "/admin/v1/audit?since=yesterday&until=2026-13-01T00:00:00Z", "", []string{"since", "until"}},
			{"audit until before since", "GET", "/admin/v1/audit?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "", []string{"until"}},
			{"audit cursor", "GET", "/admin/v1/audit?cursor=" + url.QueryEscape(cursorOf(t, e, users)), "", []string{"cursor"}},
		}
		before := e.must(200, "GET", users+"?limit=1000", "").body
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.call(tc.method, tc.path, tc.body)
				p := wantProblem(t, r, 400)
				got := r.fields()
				if tc.fields == nil {
					if got != nil {
						t.Errorf("fields %v, want none", got)
					}
					if p["detail"] == "" {
						t.Error("no detail")
					}
					return
				}
				slices.Sort(got)
				want := slices.Sorted(slices.Values(tc.fields))
				if !slices.Equal(got, want) {
					t.Errorf("fields %v, want %v (%s)", got, want, r.body)
				}
				if !strings.Contains(p["type"].(string), "tokend.dev/problems/") {
					t.Errorf("type %v", p["type"])
				}
			})
		}
		if after := e.must(200, "GET", users+"?limit=1000", "").body; string(after) != string(before) {
			t.Errorf("bad requests changed the users:\n%s\n%s", before, after)
		}

		t.Run("the reserved claim is named", func(t *testing.T) {
			r := e.call("POST", users, `{"username": "x", "claims": {"client_id": "other"}}`)
			if !strings.Contains(string(r.body), `"claims.client_id"`) || !strings.Contains(string(r.body), `\"client_id\"`) {
				t.Errorf("problem %s does not name the claim", r.body)
			}
		})
		t.Run("415", func(t *testing.T) {
			for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
				req := e.do("POST", users, e.admin, `{"username": "x"}`, []string{"Content-Type", ct})
				wantProblem(t, req, 415)
			}
			// +json types and parameters are JSON.
			e.must(201, "POST", users, `{"username": "typed"}`, "Content-Type", "application/merge-patch+json; charset=utf-8")
		})
		t.Run("413", func(t *testing.T) {
			body := `{"username": "x", "claims": {"a": "` + strings.Repeat("y", 70<<10) + `"}}`
			wantProblem(t, e.call("POST", users, body), 413)
			wantProblem(t, e.call("PATCH", user, body), 413)
		})
	})
}

// cursorOf returns a next_cursor of a list with two items or more.
func cursorOf(t *testing.T, e *env, path string) string {
	t.Helper()
	c := e.must(200, "GET", path+"?limit=1", "").str("next_cursor")
	if c == "" {
		t.Fatalf("%s has a single page", path)
	}
	return c
}

// TestBadInputNeverInternal throws malformed requests at every route: none
// may get a 5xx.
func TestBadInputNeverInternal(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	uid := e.createUser(`{"username": "alice"}`)
	bodies := []string{"", "{", "}", "[]", "null", "0", `{"a":`, "\x00", "{\"username\":\"\xff\xfe\"}", `{"claims": {"a": [[[[[[[]]]]]]]}}`,
		`{"username": "` + strings.Repeat("\\u0000", 50) + `"}`, `{"roles": [` + strings.Repeat(`"r",`, 2000) + `"r"]}`, `{"access_ttl": 9223372036854775807}`,
		`{"overlap": -9223372036854775808}`, `{"prepublish": 1e400}`, `{"alg": "ES256", "prepublish": 31536000000}`}
	paths := []string{"/admin/v1/users", "/admin/v1/users/" + uid, "/admin/v1/users/%00", "/admin/v1/users/" + strings.Repeat("x", 2000),
		"/admin/v1/users/" + uid + "/password", "/admin/v1/users/" + uid + "/sessions?cursor=" + strings.Repeat("A", 300),
		"/admin/v1/sessions/%ff", "/admin/v1/clients", "/admin/v1/clients/%00", "/admin/v1/clients/x/secret", "/admin/v1/keys",
		"/admin/v1/audit?since=9999-99-99", "/admin/v1/audit?cursor=" + url.QueryEscape("YXVkaXQ6LTE"), "/admin/v1/users?q=%ff%00&client_id=%00"}
	for _, path := range paths {
		for _, method := range []string{"GET", "POST", "PATCH", "PUT", "DELETE"} {
			for _, body := range bodies {
				r := e.call(method, path, body)
				if r.status >= 500 {
					t.Fatalf("%s %s %q: %d %s", method, path, body, r.status, r.body)
				}
				if r.status >= 400 && r.header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("%s %s %q: %d with Content-Type %q", method, path, fmt.Sprintf("%.40s", body), r.status, r.header.Get("Content-Type"))
				}
			}
		}
	}
}
