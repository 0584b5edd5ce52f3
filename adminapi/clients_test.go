package adminapi_test

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

func TestClientLifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		r := e.must(201, "POST", "/admin/v1/clients", `{"name": "billing", "scopes": ["invoices.read", "invoices.read"], "access_ttl": 300}`)
		c := r.json()
		id, sec := c["id"].(string), c["client_secret"].(string)
		if loc := r.header.Get("Location"); loc != "/admin/v1/clients/"+id || r.header.Get("ETag") == "" {
			t.Errorf("Location %q ETag %q", loc, r.header.Get("ETag"))
		}
		want := map[string]any{
			"id": id, "name": "billing", "public": false, "grants": []any{"client_credentials"}, "scopes": []any{"invoices.read"},
			"mode": "production", "access_ttl": float64(300), "disabled": false, "created_at": c["created_at"],
			"previous_secret_expires_at": nil, "client_secret": sec,
		}
		if !jsonEqual(c, want) || len(sec) != 43 {
			t.Errorf("created client %v, want %v", c, want)
		}
		cc := func(secret string) resp {
			return e.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, id, secret)
		}
		tok := cc(sec)
		if tok.status != 200 || tok.json()["expires_in"] != float64(300) {
			t.Fatalf("the new client's token: %d %s", tok.status, tok.body)
		}
		// The secret is shown once: never by GET or a list.
		got := e.must(200, "GET", "/admin/v1/clients/"+id, "")
		list := e.must(200, "GET", "/admin/v1/clients?limit=1000", "")
		for _, b := range [][]byte{got.body, list.body} {
			if strings.Contains(string(b), sec) || strings.Contains(string(b), "secret\"") {
				t.Fatalf("the secret shows again: %s", b)
			}
		}
		delete(want, "client_secret")
		if !jsonEqual(got.json(), want) {
			t.Errorf("GET %s", got.body)
		}
		tag := got.header.Get("ETag")

		t.Run("public client", func(t *testing.T) {
			r := e.must(201, "POST", "/admin/v1/clients", `{"name": "spa", "public": true, "mode": "sandbox"}`)
			p := r.json()
			if _, has := p["client_secret"]; has || p["public"] != true || !jsonEqual(p["grants"], []any{"password", "refresh_token"}) || p["mode"] != "sandbox" {
				t.Errorf("public client %s", r.body)
			}
		})
		t.Run("rotate the secret", func(t *testing.T) {
			r := e.must(200, "POST", "/admin/v1/clients/"+id+"/secret", `{"overlap": 3600}`)
			rot := r.json()
			next := rot["client_secret"].(string)
			until, err := time.Parse(time.RFC3339, rot["previous_secret_expires_at"].(string))
			if rot["client_id"] != id || next == sec || err != nil || time.Until(until) < 59*time.Minute || len(rot) != 3 {
				t.Fatalf("rotation %s", r.body)
			}
			if nt := r.header.Get("ETag"); nt == tag || nt == "" {
				t.Errorf("ETag after rotation %q", nt)
			}
			if cc(sec).status != 200 || cc(next).status != 200 {
				t.Error("during the overlap both secrets must work")
			}
			r = e.must(200, "POST", "/admin/v1/clients/"+id+"/secret", "")
			if r.json()["previous_secret_expires_at"] != nil {
				t.Errorf("rotation without overlap: %s", r.body)
			}
			sec = r.str("client_secret")
			if cc(next).status != 401 || cc(sec).status != 200 {
				t.Error("without overlap only the newest secret works")
			}
			tag = e.must(200, "GET", "/admin/v1/clients/"+id, "").header.Get("ETag")
		})
		t.Run("PATCH", func(t *testing.T) {
			wantProblem(t, e.call("PATCH", "/admin/v1/clients/"+id, `{"name": "x"}`, "If-Match", `"c1"`), 412)
			r := e.must(200, "PATCH", "/admin/v1/clients/"+id, `{"name": "invoicing", "grants": ["client_credentials", "password"], "scopes": [], "mode": "sandbox", "access_ttl": 0}`, "If-Match", tag)
			p := r.json()
			if p["name"] != "invoicing" || !jsonEqual(p["grants"], []any{"client_credentials", "password"}) || len(p["scopes"].([]any)) != 0 ||
				p["mode"] != "sandbox" || p["access_ttl"] != float64(0) || r.header.Get("ETag") == tag {
				t.Errorf("patched %s", r.body)
			}
			if tok := cc(sec); tok.status != 200 || tok.json()["expires_in"] != float64(900) {
				t.Errorf("token after PATCH: %d %s", tok.status, tok.body)
			}
		})
		t.Run("disable and enable", func(t *testing.T) {
			at := cc(sec).str("access_token")
			if !e.active(at) {
				t.Fatal("fresh token inactive")
			}
			e.must(200, "PATCH", "/admin/v1/clients/"+id, `{"disabled": true}`)
			if e.active(at) {
				t.Error("a disabled client's token is active")
			}
			if cc(sec).status != 401 {
				t.Error("a disabled client gets tokens")
			}
			e.must(200, "PATCH", "/admin/v1/clients/"+id, `{"disabled": false}`)
			if cc(sec).status != 200 {
				t.Error("an enabled client gets no token")
			}
		})
		t.Run("delete", func(t *testing.T) {
			at := cc(sec).str("access_token")
			wantProblem(t, e.call("DELETE", "/admin/v1/clients/"+id, "", "If-Match", `"c1"`), 412)
			e.must(204, "DELETE", "/admin/v1/clients/"+id, "")
			if e.active(at) {
				t.Error("a deleted client's token is active")
			}
			if cc(sec).status != 401 {
				t.Error("a deleted client gets tokens")
			}
			wantProblem(t, e.call("GET", "/admin/v1/clients/"+id, ""), 404)
			wantProblem(t, e.call("POST", "/admin/v1/clients/"+id+"/secret", ""), 404)
		})
	})
}

func TestClientPages(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	for i := range 7 {
		e.must(201, "POST", "/admin/v1/clients", `{"name": "c`+string(rune('0'+i))+`"}`)
	}
	all := e.must(200, "GET", "/admin/v1/clients?limit=1000", "").items() // 5 clients of newEnv, 7 here
	if len(all) != 12 {
		t.Fatalf("%d clients, want 12", len(all))
	}
	var seen []any
	cursor := ""
	for range 10 {
		r := e.must(200, "GET", "/admin/v1/clients?limit=5&cursor="+url.QueryEscape(cursor), "")
		for _, c := range r.items() {
			seen = append(seen, c["id"])
		}
		if cursor = r.str("next_cursor"); cursor == "" {
			break
		}
	}
	var want []any
	for _, c := range all {
		want = append(want, c["id"])
	}
	if !jsonEqual(seen, want) {
		t.Fatalf("pages %v, want %v", seen, want)
	}
	if r := e.must(200, "GET", "/admin/v1/clients", ""); r.json()["next_cursor"] != nil || len(r.items()) != 12 {
		t.Errorf("default page: %s", r.body)
	}
}

func TestKeys(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		keys := e.must(200, "GET", "/admin/v1/keys", "")
		if items := keys.items(); len(items) != 1 || items[0]["alg"] != "ES256" || items[0]["status"] != "signing" || items[0]["revoked_at"] != nil {
			t.Fatalf("keys %s", keys.body)
		}
		first := keys.items()[0]["kid"]
		r := e.must(201, "POST", "/admin/v1/keys", `{"alg": "ES256", "prepublish": 3600}`)
		k := r.json()
		if k["alg"] != "ES256" || k["status"] != "announced" || r.header.Get("ETag") == "" {
			t.Fatalf("new key %s", r.body)
		}
		at, _ := time.Parse(time.RFC3339, k["activates_at"].(string))
		if d := time.Until(at); d < 59*time.Minute || d > 61*time.Minute {
			t.Errorf("activates_at %v", k["activates_at"])
		}
		if jwks := e.do("GET", "/.well-known/jwks.json", "", "", nil); !strings.Contains(string(jwks.body), k["kid"].(string)) {
			t.Error("the announced key is not in the JWKS")
		}
		r = e.must(201, "POST", "/admin/v1/keys", `{"alg": "ES256"}`)
		now := r.json()
		list := e.must(200, "GET", "/admin/v1/keys", "").items()
		statuses := map[any]any{}
		for _, k := range list {
			statuses[k["kid"]] = k["status"]
		}
		if statuses[first] != "retired" || statuses[now["kid"]] != "signing" || now["status"] != "signing" || len(list) != 3 {
			t.Errorf("statuses %v", statuses)
		}
		// Tokens are now signed by the new key.
		tok := e.clientToken(e.adminClient, e.adminSecret, "")
		header, _, _ := strings.Cut(tok, ".")
		if h, err := base64.RawURLEncoding.DecodeString(header); err != nil || !strings.Contains(string(h), now["kid"].(string)) {
			t.Errorf("a new token's header %s does not name the new key", h)
		}
	})
}
