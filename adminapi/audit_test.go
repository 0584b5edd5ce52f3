package adminapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

func TestAudit(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		start := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
		uid := e.createUser(`{"username": "root", "password": "pw-of-root", "roles": ["tokend.admin"]}`)
		r := e.must(201, "POST", "/admin/v1/clients", `{"name": "billing"}`)
		cid, sec := r.str("id"), r.str("client_secret")
		e.must(204, "PUT", "/admin/v1/users/"+uid+"/password", `{"password": "pw-2-of-root"}`)
		// A write by a user's token names the user.
		userTok := e.login("root", "pw-2-of-root", grant.ScopeAdmin).str("access_token")
		if r := e.do("PATCH", "/admin/v1/clients/"+cid, userTok, `{"disabled": true}`, nil); r.status != 200 {
			t.Fatalf("PATCH with the user's token: %d %s", r.status, r.body)
		}

		all := e.must(200, "GET", "/admin/v1/audit?limit=1000&since="+start, "")
		for _, leak := range []string{sec, "pw-of-root", "pw-2-of-root", "$argon2id"} {
			if strings.Contains(string(all.body), leak) {
				t.Fatalf("the audit trail shows a secret: %s", all.body)
			}
		}
		var mine []map[string]any
		for _, ev := range all.items() {
			if ev["dialect"] == "admin" {
				mine = append(mine, ev)
			}
		}
		want := []struct{ event, subject, actor string }{
			{"client.disabled", cid, "user:" + uid},
			{"user.password_changed", uid, "client:" + e.adminClient},
			{"client.created", cid, "client:" + e.adminClient},
			{"user.created", uid, "client:" + e.adminClient},
		}
		if len(mine) != len(want) {
			t.Fatalf("admin events %v, want %v", mine, want)
		}
		for i, w := range want {
			ev := mine[i]
			if ev["event"] != w.event || ev["subject"] != w.subject || ev["actor"] != w.actor || ev["outcome"] != "success" || ev["ip"] != "127.0.0.1" {
				t.Errorf("event %d = %v, want %+v", i, ev, w)
			}
			if _, err := time.Parse(time.RFC3339, ev["at"].(string)); err != nil || ev["seq"].(float64) <= 0 {
				t.Errorf("event %d: at %v seq %v", i, ev["at"], ev["seq"])
			}
		}

		for _, tc := range []struct {
			query string
			want  int
		}{
			{"event=user.created", 1},
			{"subject=" + uid, 2},
			{"client_id=" + cid + "&event=client.created", 1},
			{"since=2999-01-01T00:00:00Z", 0},
			{"until=2000-01-01T00:00:00Z", 0},
			{"event=nothing.happened", 0},
		} {
			if got := e.must(200, "GET", "/admin/v1/audit?"+tc.query, "").items(); len(got) != tc.want {
				t.Errorf("?%s: %d events, want %d: %v", tc.query, len(got), tc.want, got)
			}
		}

		// Pages, newest first, and an insert during the walk goes to
		// the front, never into a later page.
		var seqs []float64
		cursor := ""
		for i := 0; ; i++ {
			r := e.must(200, "GET", "/admin/v1/audit?limit=2&cursor="+url.QueryEscape(cursor), "")
			for _, ev := range r.items() {
				seqs = append(seqs, ev["seq"].(float64))
			}
			if i == 0 {
				e.createUser(`{"username": "during-the-walk"}`)
			}
			if cursor = r.str("next_cursor"); cursor == "" {
				break
			}
		}
		for i := 1; i < len(seqs); i++ {
			if seqs[i] >= seqs[i-1] {
				t.Fatalf("seqs not strictly decreasing: %v", seqs)
			}
		}
		if len(seqs) != len(all.items()) {
			t.Errorf("the walk saw %d events, the start had %d", len(seqs), len(all.items()))
		}
	})
}

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

// TestCustomClaims: a user's claims reach its OAuth access tokens and
// /userinfo, and can never replace a claim tokend sets, even when the
// store holds one (written before the rule, or behind the API's back).
func TestCustomClaims(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		id := e.createUser(`{"username": "alice", "password": "pw", "roles": ["ops"], "claims": {"dept": "ops", "level": 12345678901234567890, "tags": ["a", "b"], "org": {"id": 7}}}`)
		login := e.login("alice", "pw", "")
		claims := payload(t, login.str("access_token"))
		if claims["dept"] != "ops" || !jsonEqual(claims["tags"], []any{"a", "b"}) || !jsonEqual(claims["org"], map[string]any{"id": 7}) {
			t.Errorf("token claims %v", claims)
		}
		if n, ok := claims["level"].(json.Number); !ok || n.String() != "12345678901234567890" {
			t.Errorf("level %v (%T): a big number must keep every digit", claims["level"], claims["level"])
		}
		info := e.userinfo(login.str("access_token")).json()
		if info["dept"] != "ops" || info["sub"] != id || info["preferred_username"] != "alice" {
			t.Errorf("userinfo %v", info)
		}

		// Behind the API's back, claims named like tokend's own.
		u, err := e.store.UserByID(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		u.Claims = map[string]any{"sub": "mallory", "iss": "http://evil", "scope": "tokend.admin", "roles": []any{"tokend.admin"},
			"client_id": "x", "preferred_username": "root", "exp": 99999999999, "dept": "sales"}
		if err := e.store.UpdateUser(t.Context(), u, u.Version, time.Now()); err != nil {
			t.Fatal(err)
		}
		e.engine.Sync(t.Context())
		login = e.login("alice", "pw", "")
		claims = payload(t, login.str("access_token"))
		if claims["sub"] != id || claims["iss"] != issuer || claims["scope"] != "profile" || !jsonEqual(claims["roles"], []any{"ops"}) ||
			claims["client_id"] != e.web || claims["preferred_username"] != "alice" || claims["dept"] != "sales" {
			t.Errorf("claims %v", claims)
		}
		if exp, _ := claims["exp"].(json.Number).Int64(); exp > time.Now().Add(time.Hour).Unix() {
			t.Errorf("exp %d was overridden", exp)
		}
		info = e.userinfo(login.str("access_token")).json()
		if info["sub"] != id || info["preferred_username"] != "alice" || info["dept"] != "sales" || info["iss"] != nil || info["scope"] != nil {
			t.Errorf("userinfo %v", info)
		}

		// The largest user the API accepts still gets tokens that tokend
		// itself accepts (RS512: the longest signature).
		e = newEnv(t, open(t), func(c *grant.Config) { c.Alg = "RS512" })
		big := map[string]any{}
		for i := range 60 {
			big["k"+strings.Repeat("x", 20)+string(rune('A'+i))] = strings.Repeat("v", 40)
		}
		bigJSON, _ := json.Marshal(big)
		if len(bigJSON) > grant.MaxClaimsBytes || len(bigJSON) < grant.MaxClaimsBytes-100 {
			t.Fatalf("claims of %d bytes", len(bigJSON))
		}
		long := func(n, size int) []string {
			l := make([]string, n)
			for i := range l {
				l[i] = fmt.Sprintf("%s%02d", strings.Repeat(string(rune('a'+i%26)), size-2), i)
			}
			return l
		}
		rolesJSON, _ := json.Marshal(long(grant.MaxRoles, grant.MaxRoleLen))
		scopesJSON, _ := json.Marshal(long(grant.MaxScopes, grant.MaxScopeLen))
		name := strings.Repeat("n", grant.MaxNameLen)
		e.createUser(`{"username": "` + name + `", "password": "pw", "roles": ` + string(rolesJSON) + `, "claims": ` + string(bigJSON) + `}`)
		wide := e.must(201, "POST", "/admin/v1/clients", `{"name": "wide", "public": true, "scopes": `+string(scopesJSON)+`}`).str("id")
		r := e.form("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {name}, "password": {"pw"}, "client_id": {wide}}, "", "")
		tok := r.str("access_token")
		if r.status != 200 || !strings.HasPrefix(string(mustHeader(t, tok)), `{"alg":"RS512"`) {
			t.Fatalf("login: %d %.300s", r.status, r.body)
		}
		t.Logf("the largest token is %d bytes", len(tok))
		if !e.active(tok) {
			t.Fatalf("a token of %d bytes for the largest user is refused", len(tok))
		}
		if r := e.userinfo(tok); r.status != 200 {
			t.Errorf("userinfo with the largest token: %d", r.status)
		}
	})
}

// payload decodes a JWT's claims (signature checks are other tests').
func payload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustHeader(t *testing.T, jwt string) []byte {
	t.Helper()
	h, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	return b
}
