package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/console"
	"github.com/tokend/tokend/grant"
)

// TestSigninCookie: a right password of an administrator starts a sign-in
// whose cookie is HttpOnly and SameSite=Strict; over TLS (or when told the
// console is behind TLS) it is also Secure, with the __Host- prefix and
// Path=/. The store keeps the token's hash, never the token.
func TestSigninCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "secure"}[secure], func(t *testing.T) {
			e := newEnv(t, envOptions{console: console.Options{Secure: secure}})
			e.admin("root", "s3cret-pass")
			b := e.browser(t)
			b.signin("root", "s3cret-pass").redirect("/console/")
			c := b.sessionCookie()
			if c == nil {
				t.Fatalf("no sign-in cookie: %v", b.cookies)
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Fatalf("cookie %+v: want HttpOnly and SameSite=Strict", c)
			}
			if wantName := map[bool]string{false: "tokend_console", true: "__Host-tokend_console"}[secure]; c.Name != wantName || c.Secure != secure {
				t.Fatalf("cookie %q Secure=%v, want %q Secure=%v", c.Name, c.Secure, wantName, secure)
			}
			if secure && c.Path != "/" {
				t.Fatalf("a __Host- cookie with Path %q", c.Path)
			}
			if c.MaxAge != int((12 * time.Hour).Seconds()) {
				t.Fatalf("Max-Age %d, want 12 hours", c.MaxAge)
			}
			if _, err := e.Store.ConsoleSession(context.Background(), []byte(c.Value)); err == nil {
				t.Fatal("the store holds the cookie's token itself")
			}
			b.get("/console/").want(200, "Overview", "root")
		})
	}
}

// TestSessionIdleTimeout: a sign-in without a request for 30 minutes
// ends; every request restarts that clock.
func TestSessionIdleTimeout(t *testing.T) {
	e := newEnv(t)
	e.admin("root", "s3cret-pass")
	b := e.browser(t)
	b.mustSignin("root", "s3cret-pass")
	for range 3 {
		e.advance(29 * time.Minute)
		b.get("/console/users").want(200, "Users")
	}
	e.advance(30 * time.Minute)
	b.get("/console/users").redirect("/console/signin?")
	p := b.get("/console/signin?m=idle").want(200, "signed out after a while without activity")
	_ = p
	if b.sessionCookie() != nil {
		t.Fatal("the idle sign-in's cookie was not cleared")
	}
}

// TestSessionAbsoluteTimeout: a sign-in ends 12 hours after it began,
// however active.
func TestSessionAbsoluteTimeout(t *testing.T) {
	e := newEnv(t)
	e.admin("root", "s3cret-pass")
	b := e.browser(t)
	b.mustSignin("root", "s3cret-pass")
	cookie := *b.sessionCookie()
	for elapsed := time.Duration(0); elapsed < 12*time.Hour-25*time.Minute; elapsed += 25 * time.Minute {
		e.advance(25 * time.Minute)
		b.get("/console/").want(200, "Overview")
	}
	e.advance(25 * time.Minute) // past 12 hours
	p := b.get("/console/")
	if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "m=expired") {
		t.Fatalf("after 12 hours: %d %q, want a redirect to the sign-in page (expired)", p.status, p.location())
	}
	// The sign-in is gone from the store: the old cookie stays refused.
	again := e.browser(t)
	again.cookies[cookie.Name] = &cookie
	again.get("/console/").redirect("/console/signin")
}

// TestSignout: signing out ends the sign-in on the server, so that the
// old cookie is refused; signing out needs the CSRF token.
func TestSignout(t *testing.T) {
	e := newEnv(t)
	e.admin("root", "s3cret-pass")
	b := e.browser(t)
	b.mustSignin("root", "s3cret-pass")
	old := *b.sessionCookie()
	b.post("/console/signout", url.Values{}).want(http.StatusForbidden, "security token")
	b.get("/console/").want(200, "Overview")
	b.submit("/console/", "/console/signout", nil).redirect("/console/signin?m=signedout")
	if b.sessionCookie() != nil {
		t.Fatal("the cookie was not cleared")
	}
	thief := e.browser(t)
	thief.cookies[old.Name] = &old
	p := thief.get("/console/users")
	if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "m=ended") {
		t.Fatalf("the signed-out cookie got %d %q, want a redirect to sign in (ended)", p.status, p.location())
	}
	e.Auditor.Flush(context.Background())
	if !strings.Contains(b.mustAudit(e, "console.signed_out"), "console.signed_out") {
		t.Fatal("no audit event of the sign-out")
	}
}

// mustAudit returns the audit page filtered by an event, as text.
func (b *browser) mustAudit(e *env, event string) string {
	b.t.Helper()
	admin := e.browser(b.t)
	admin.mustSignin("root", "s3cret-pass")
	return admin.get("/console/audit?event=" + url.QueryEscape(event)).want(200).body
}

// TestNonAdminRefused: a right password of a user without the role
// tokend.admin signs no one in; a disabled administrator cannot sign in.
func TestNonAdminRefused(t *testing.T) {
	e := newEnv(t)
	e.AddUser("alice", "alice-pass", "reader")
	b := e.browser(t)
	b.signin("alice", "alice-pass").want(http.StatusForbidden, "needs the role tokend.admin")
	if b.sessionCookie() != nil {
		t.Fatal("a user without the role got a sign-in cookie")
	}
	b.get("/console/").redirect("/console/signin")

	id := e.admin("root", "s3cret-pass")
	m := e.Engine.Manager()
	if _, err := m.SetUserDisabled(context.Background(), id, true); err != nil {
		t.Fatal(err)
	}
	b.signin("root", "s3cret-pass").want(http.StatusUnauthorized, "Wrong username or password")
}

// TestRoleRemovedEndsSession: a sign-in ends at once when its user loses
// the role, is disabled, or gets a new password.
func TestRoleRemovedEndsSession(t *testing.T) {
	for _, change := range []string{"role", "disable", "password", "delete"} {
		t.Run(change, func(t *testing.T) {
			e := newEnv(t)
			id := e.admin("root", "s3cret-pass")
			b := e.browser(t)
			b.mustSignin("root", "s3cret-pass")
			m, ctx := e.Engine.Manager(), context.Background()
			var err error
			switch change {
			case "role":
				roles := []string{"reader"}
				_, err = m.UpdateUser(ctx, id, grant.UserPatch{Roles: &roles}, nil)
			case "disable":
				_, err = m.SetUserDisabled(ctx, id, true)
			case "password":
				e.advance(time.Second)
				err = m.SetUserPassword(ctx, id, "new-pass-123", false)
				e.advance(time.Second)
			case "delete":
				err = m.DeleteUser(ctx, id, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			p := b.get("/console/")
			if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "m=revoked") {
				t.Fatalf("after the %s change: %d %q, want a redirect to sign in (revoked)", change, p.status, p.location())
			}
		})
	}
}

// TestSigninLockout: the console's sign-in counts toward the account's
// lockout like every login, and says when to try again.
func TestSigninLockout(t *testing.T) {
	e := newEnv(t, envOptions{limits: grant.Limits{LockoutThreshold: 3, LockoutBase: time.Minute, LockoutMax: 15 * time.Minute}})
	e.admin("root", "s3cret-pass")
	b := e.browser(t)
	for range 3 {
		b.signin("root", "wrong").want(http.StatusUnauthorized, "Wrong username or password")
	}
	p := b.signin("root", "s3cret-pass").want(http.StatusTooManyRequests, "Too many failed sign-ins", "Try again in")
	if p.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After on the lockout")
	}
	if b.sessionCookie() != nil {
		t.Fatal("a locked account signed in")
	}
	e.advance(61 * time.Second)
	b.mustSignin("root", "s3cret-pass")
}

// TestSigninPerIPLimit: failed sign-ins count against the client IP too.
func TestSigninPerIPLimit(t *testing.T) {
	e := newEnv(t, envOptions{limits: grant.Limits{RateLimit: 3, RateWindow: time.Minute}})
	e.admin("root", "s3cret-pass")
	b := e.browser(t)
	for i := range 3 {
		b.signin("nobody"+string(rune('a'+i)), "wrong").want(http.StatusUnauthorized)
	}
	b.signin("root", "s3cret-pass").want(http.StatusTooManyRequests, "Try again in")
}

// TestSigninErrors: empty fields are named next to their fields; a
// sign-in form without its CSRF token is refused.
func TestSigninErrors(t *testing.T) {
	e := newEnv(t)
	e.admin("root", "s3cret-pass")
	b := e.browser(t)
	p := b.submit("/console/signin", "/console/signin", url.Values{"username": {""}, "password": {""}}).want(http.StatusBadRequest, "Enter your username.", "Enter your password.")
	if !strings.Contains(p.body, `id="f-username-err"`) || !strings.Contains(p.body, `aria-invalid="true"`) {
		t.Fatalf("the errors are not next to their fields: %s", p.body)
	}
	b.post("/console/signin", url.Values{"username": {"root"}, "password": {"s3cret-pass"}}).want(http.StatusForbidden, "security token")
	if b.sessionCookie() != nil {
		t.Fatal("a sign-in without its CSRF token signed in")
	}
	// After signing in, the sign-in page goes on to the console, and only
	// to the console.
	b.signin("root", "s3cret-pass").redirect("/console/")
	b.get("/console/signin?next=" + url.QueryEscape("//evil.example/")).redirect("/console/")
	if loc := b.get("/console/signin?next=" + url.QueryEscape("/console/keys")).location(); loc != "/console/keys" {
		t.Fatalf("next: %q", loc)
	}
}
