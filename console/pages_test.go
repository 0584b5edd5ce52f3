package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tokend/tokend"
)

// signedIn returns an env with an administrator signed in.
func signedIn(t *testing.T) (*env, *browser) {
	t.Helper()
	e := newEnv(t)
	e.admin("root", "s3cret-pass")
	b := e.browser(t)
	b.mustSignin("root", "s3cret-pass")
	return e, b
}

// TestCSRF: every state-changing request needs the CSRF token of the
// sign-in that makes it, and a request from another site is refused
// whatever it carries.
func TestCSRF(t *testing.T) {
	e, b := signedIn(t)
	other := e.browser(t)
	other.mustSignin("root", "s3cret-pass")
	otherCSRF := other.get("/console/").csrf()
	form := url.Values{"username": {"alice"}, "password": {"alice-pass"}}
	for name, csrf := range map[string]string{"none": "", "wrong": "x" + otherCSRF[1:], "another sign-in's": otherCSRF} {
		f := url.Values{"username": form["username"], "password": form["password"]}
		if csrf != "" {
			f.Set("csrf", csrf)
		}
		b.post("/console/users", f).want(http.StatusForbidden, "security token")
		if _, err := e.Store.UserByName(context.Background(), "alice"); tokend.ErrorCode(err) != tokend.ENOTFOUND {
			t.Fatalf("a post with %s CSRF token created the user (%v)", name, err)
		}
	}
	b.header.Set("Sec-Fetch-Site", "cross-site")
	f := url.Values{"username": form["username"], "password": form["password"], "csrf": {b.get("/console/").csrf()}}
	b.post("/console/users", f).want(http.StatusForbidden, "another site")
	b.header.Del("Sec-Fetch-Site")
	b.post("/console/users", f).redirect("/console/users/")
	if _, err := e.Store.UserByName(context.Background(), "alice"); err != nil {
		t.Fatalf("the post with the token: %v", err)
	}
}

// TestConfirmation: a destructive post without confirmed=yes (a browser
// without the page's script) gets a confirmation page and changes
// nothing; its form, confirmed, does the change.
func TestConfirmation(t *testing.T) {
	e, b := signedIn(t)
	id := e.AddUser("alice", "alice-pass", "reader")
	p := b.submit("/console/users/"+id, "/console/users/"+id+"/disable", nil).want(200, "Please confirm", "Disable the user alice?")
	if u, _ := e.Store.UserByID(context.Background(), id); u.Disabled {
		t.Fatal("an unconfirmed post disabled the user")
	}
	if !strings.Contains(p.body, `name="confirmed" value="yes"`) || !strings.Contains(p.body, `action="/console/users/`+id+`/disable"`) {
		t.Fatalf("the confirmation page has no confirming form: %s", p.body)
	}
	b.post("/console/users/"+id+"/disable", url.Values{"csrf": {p.csrf()}, "confirmed": {"yes"}}).redirect("/console/users/" + id + "?done=user-disabled")
	if u, _ := e.Store.UserByID(context.Background(), id); !u.Disabled {
		t.Fatal("the confirmed post did not disable the user")
	}
	b.get("/console/users/"+id+"?done=user-disabled").want(200, "The user was disabled", "disabled")
	b.submit("/console/users/"+id, "/console/users/"+id+"/enable", nil).redirect("/console/users/" + id)
	if u, _ := e.Store.UserByID(context.Background(), id); u.Disabled {
		t.Fatal("enable did not enable")
	}
}

// TestUserForms: creating and editing users shows the engine's every bad
// field next to its field, and keeps what was typed (never a password).
func TestUserForms(t *testing.T) {
	e, b := signedIn(t)
	p := b.submit("/console/users/new", "/console/users", url.Values{
		"username": {" bad name"}, "password": {"pw"}, "roles": {"ok, " + strings.Repeat("r", 40)}, "claims": {`{"iss": "me"}`},
	}).want(http.StatusBadRequest, "Please correct the fields marked below.", "roles[1]:", `"iss" is a registered claim`)
	for _, id := range []string{"f-username-err", "f-roles-err", "f-claims-err"} {
		if !strings.Contains(p.body, `id="`+id+`"`) {
			t.Fatalf("no %s on the page: %s", id, p.body)
		}
	}
	if strings.Contains(p.body, `value="pw"`) {
		t.Fatal("the password was echoed back")
	}
	b.submit("/console/users/new", "/console/users", url.Values{"username": {"bob"}, "claims": {"[1]"}}).want(http.StatusBadRequest, "must be a JSON object")

	p = b.submit("/console/users/new", "/console/users", url.Values{"username": {"bob"}, "password": {"bob-pass"}, "roles": {"reader writer"}, "claims": {`{"team": "blue"}`}})
	loc := p.redirect("/console/users/").location()
	id := strings.TrimPrefix(strings.Split(loc, "?")[0], "/console/users/")
	b.get(loc).want(200, "The user was created.", "bob", "reader writer", `"team": "blue"`)
	b.submit("/console/users/new", "/console/users", url.Values{"username": {"bob"}}).want(http.StatusBadRequest, `user "bob" already exists`)

	// Edit roles and claims.
	b.submit("/console/users/"+id, "/console/users/"+id, url.Values{"roles": {"auditor"}, "claims": {""}}).redirect("/console/users/" + id + "?done=user-updated")
	u, err := e.Store.UserByID(context.Background(), id)
	if err != nil || len(u.Roles) != 1 || u.Roles[0] != "auditor" || len(u.Claims) != 0 {
		t.Fatalf("after the edit: %+v %v", u, err)
	}
	// A stale form (another change meanwhile) is refused, not overwritten.
	csrf := b.get("/console/users/" + id).csrf()
	b.post("/console/users/"+id, url.Values{"csrf": {csrf}, "roles": {"x"}, "claims": {""}, "version": {"1"}}).want(http.StatusConflict, "changed this user since you opened the page")
	// Reset the password.
	b.submit("/console/users/"+id, "/console/users/"+id+"/password", url.Values{"password": {"new-pass"}, "password2": {"other"}}).want(http.StatusBadRequest, "The two passwords differ.")
	b.submit("/console/users/"+id, "/console/users/"+id+"/password", url.Values{"password": {"new-pass"}, "password2": {"new-pass"}}).redirect("/console/users/" + id + "?done=password-set")
	if _, err := e.Engine.CheckUser(context.Background(), "bob", "new-pass"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	// Search by name prefix.
	e.AddUser("bobby", "x", "reader")
	e.AddUser("carol", "x", "reader")
	p = b.get("/console/users?q=bob").want(200, "bobby")
	if p.has("carol") {
		t.Fatal("the prefix search listed carol")
	}
	b.get("/console/users/no-such-id").want(http.StatusNotFound, "no user")
}

// TestClientPages: a client app created in the console gets its secret
// shown once; the secret works; rotating it ends the old one.
func TestClientPages(t *testing.T) {
	e, b := signedIn(t)
	p := b.submit("/console/clients/new", "/console/clients", url.Values{"name": {"billing"}, "grants": {"client_credentials"}, "mode": {"production"}, "access_ttl": {"10m"}}).
		want(200, "you will not see it again")
	id := regexp.MustCompile(`id="client-id">([^<]+)<`).FindStringSubmatch(p.body)[1]
	sec := regexp.MustCompile(`id="secret" class="secret" value="([^"]+)"`).FindStringSubmatch(p.body)[1]
	token := func(secret string) int {
		r := e.Do("POST", "/oauth2/token", "application/x-www-form-urlencoded",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}.Encode())
		return r.Status
	}
	if s := token(sec); s != 200 {
		t.Fatalf("client_credentials with the secret shown: %d", s)
	}
	b.get("/console/clients/"+id).want(200, "billing", "client_credentials", "10m0s")
	if b.get("/console/clients/" + id).has(sec) {
		t.Fatal("the client page shows the secret again")
	}
	// Bad settings: every field named.
	b.submit("/console/clients/"+id, "/console/clients/"+id, url.Values{"grants": {"nope"}, "scopes": {"a\"b"}, "mode": {"x"}, "access_ttl": {"forever"}}).
		want(http.StatusBadRequest, "unknown grant", "is not a scope", "unknown mode", "must be a number of seconds")
	// Rotate without an overlap: the old secret stops at once.
	p = b.submit("/console/clients/"+id, "/console/clients/"+id+"/secret", url.Values{"confirmed": {"yes"}}).want(200, "you will not see it again", "The previous secret no longer works.")
	newSec := regexp.MustCompile(`id="secret" class="secret" value="([^"]+)"`).FindStringSubmatch(p.body)[1]
	if s := token(sec); s != 401 {
		t.Fatalf("the old secret after rotation: %d, want 401", s)
	}
	if s := token(newSec); s != 200 {
		t.Fatalf("the new secret: %d", s)
	}
	b.submit("/console/clients/"+id, "/console/clients/"+id+"/secret", url.Values{"confirmed": {"yes"}, "overlap": {"31d"}}).want(http.StatusBadRequest, "overlap")
	// Disable, after confirming.
	b.submit("/console/clients/"+id, "/console/clients/"+id+"/disable", nil).want(200, "Please confirm")
	b.submit("/console/clients/"+id, "/console/clients/"+id+"/disable", url.Values{"confirmed": {"yes"}}).redirect("/console/clients/" + id + "?done=client-disabled")
	if s := token(newSec); s != 401 {
		t.Fatalf("a disabled client's secret: %d, want 401", s)
	}
	b.get("/console/clients").want(200, "billing", "disabled")
}

// TestKeysAndAudit: rotating a key adds a signing key; the audit trail
// names the administrator who did it, and filters by event.
func TestKeysAndAudit(t *testing.T) {
	e, b := signedIn(t)
	before, _ := e.Engine.Manager().Keys(context.Background())
	b.submit("/console/keys", "/console/keys", url.Values{"alg": {"EdDSA"}, "confirmed": {"yes"}}).redirect("/console/keys?done=key-rotated")
	after, _ := e.Engine.Manager().Keys(context.Background())
	if len(after) != len(before)+1 {
		t.Fatalf("keys before %d, after %d: %+v", len(before), len(after), after)
	}
	b.get("/console/keys?done=key-rotated").want(200, "A new signing key was added.", "EdDSA", "signing")
	b.submit("/console/keys", "/console/keys", url.Values{"alg": {"HS256"}, "prepublish": {"-5"}, "confirmed": {"yes"}}).want(http.StatusBadRequest, "unknown algorithm", "prepublish")

	admin, _ := e.Store.UserByName(context.Background(), "root")
	p := b.get("/console/audit?event=key.rotated").want(200, "key.rotated", "user:"+admin.ID, "alg=EdDSA")
	if strings.Contains(p.body, `class="event">console.signed_in`) {
		t.Fatal("the event filter kept other events")
	}
	b.get("/console/audit?since=yesterday").want(http.StatusBadRequest, "must be a date and time")
	b.get("/console/audit?since=2030-01-02T00:00&until=2030-01-01T00:00").want(http.StatusBadRequest, "until", "must be after since")
	if p := b.get("/console/audit?since=2000-01-01T00:00").want(200); !strings.Contains(p.body, `class="event">console.signed_in`) || !strings.Contains(p.body, `class="event">key.rotated`) {
		t.Fatalf("the unfiltered trail: %s", p.body)
	}
}

// TestOverview: the overview counts users, clients and live sessions, and
// charts this node's tokens issued and failures per minute.
func TestOverview(t *testing.T) {
	e, b := signedIn(t)
	id, sec := e.AddClient(false, "", nil, "client_credentials")
	for range 3 {
		r := e.Do("POST", "/oauth2/token", "application/x-www-form-urlencoded", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {sec}}.Encode())
		if r.Status != 200 {
			t.Fatalf("token: %d", r.Status)
		}
	}
	r := e.Do("POST", "/oauth2/token", "application/x-www-form-urlencoded", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {"wrong"}}.Encode())
	if r.Status != 401 {
		t.Fatalf("a wrong secret: %d", r.Status)
	}
	p := b.get("/console/").want(200, "Tokens issued: 3 in the last hour", "Failures: 1", "Counted by this node only")
	for _, want := range []string{`<svg class="chart"`, `<rect class="bar"`, `<polyline class="failures"`} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("no %s in the overview", want)
		}
	}
	if !regexp.MustCompile(`<dt>Client apps</dt><dd>1</dd>`).MatchString(p.body) || !regexp.MustCompile(`<dt>Users</dt><dd>1</dd>`).MatchString(p.body) {
		t.Fatalf("counts: %s", p.body)
	}
}

// TestStaticAndHeaders: the stylesheet and script are served from the
// binary, and every answer carries the security headers (the OpenAPI
// check requires them on each; this names them once).
func TestStaticAndHeaders(t *testing.T) {
	e, b := signedIn(t)
	p := b.get("/console/")
	css := regexp.MustCompile(`href="(/console/static/console\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(p.body)
	js := regexp.MustCompile(`src="(/console/static/console\.js\?v=[0-9a-f]+)"`).FindStringSubmatch(p.body)
	if css == nil || js == nil {
		t.Fatalf("no stylesheet or script: %s", p.body)
	}
	if strings.Contains(p.body, "<script>") || strings.Contains(p.body, "style=") || strings.Contains(p.body, " onclick") {
		t.Fatal("inline script or style on a page")
	}
	for path, typ := range map[string]string{css[1]: "text/css", js[1]: "text/javascript"} {
		s := b.get(path).want(200)
		if !strings.HasPrefix(s.header.Get("Content-Type"), typ) {
			t.Fatalf("%s: %q", path, s.header.Get("Content-Type"))
		}
		r := e.Do("GET", path, "", "", "If-None-Match", s.header.Get("ETag"))
		if r.Status != http.StatusNotModified {
			t.Fatalf("revalidation of %s: %d", path, r.Status)
		}
	}
	b.get("/console/static/nope.js").want(http.StatusNotFound)
	h := p.header
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'; script-src 'self'") || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers: %v", h)
	}
	if r := b.get("/console"); r.status != http.StatusMovedPermanently || r.location() != "/console/" {
		t.Fatalf("/console: %d %q", r.status, r.location())
	}
}
