package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// setupLink returns the path of the setup link that the console's Start
// logged.
func (e *env) setupLink(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`setup_url="?(http://[^" ]+)`).FindAllStringSubmatch(e.Logs(), -1)
	if m == nil {
		t.Fatalf("no setup link in the log: %s", e.Logs())
	}
	u, err := url.Parse(m[len(m)-1][1])
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI()
}

func setupForm(username, password string) url.Values {
	return url.Values{"username": {username}, "password": {password}, "password2": {password}}
}

// withToken adds the setup token of link to a form.
func withToken(link string, f url.Values) url.Values {
	u, _ := url.Parse(link)
	f.Set("token", u.Query().Get("token"))
	return f
}

// TestSetupLink: with no administrator, Start logs a one-time link; it
// creates the first administrator and signs them in, once. The token is
// kept only as a hash.
func TestSetupLink(t *testing.T) {
	e := newEnv(t)
	e.start(t)
	link := e.setupLink(t)
	b, other := e.browser(t), e.browser(t)
	b.get(link).want(200, "Create the first administrator")
	otherCSRF := other.get(link).csrf() // another browser opens the link too
	// A mistake costs nothing: the passwords differ, the name is bad.
	f := withToken(link, setupForm("  root", "pw-one"))
	f.Set("password2", "pw-two")
	p := b.submit(link, "/console/setup", f).want(http.StatusBadRequest, "The two passwords differ.", "without surrounding spaces")
	if !strings.Contains(p.body, `id="f-password2-err"`) || !strings.Contains(p.body, `id="f-username-err"`) {
		t.Fatalf("the errors are not next to their fields: %s", p.body)
	}
	b.submit(link, "/console/setup", withToken(link, setupForm("root", "s3cret-pass"))).redirect("/console/?done=welcome")
	b.get("/console/?done=welcome").want(200, "Welcome. You are the first administrator", "root")
	u, err := e.Store.UserByName(context.Background(), "root")
	if err != nil || len(u.Roles) != 1 || u.Roles[0] != grant.RoleAdmin {
		t.Fatalf("the first administrator: %+v, %v", u, err)
	}
	// Used once: the link is refused, whoever holds it.
	other.get(link).want(http.StatusNotFound, "setup link is not valid")
	f = withToken(link, setupForm("mallory", "mallory-pass"))
	f.Set("csrf", otherCSRF)
	other.post("/console/setup", f).want(http.StatusNotFound, "setup link is not valid")
	if _, err := e.Store.UserByName(context.Background(), "mallory"); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Fatalf("a spent setup link created a user (%v)", err)
	}
	if strings.Contains(e.Logs(), "s3cret-pass") {
		t.Fatal("the password is in the log")
	}
}

// TestSetupLinkOnceAcrossNodes: a second node's link is spent with the
// first's, since the first administrator exists (the tokens are in the
// store, not in a node's memory).
func TestSetupLinkSpentOnce(t *testing.T) {
	e := newEnv(t)
	e.start(t)
	first := e.setupLink(t)
	second, _, err := e.console.NewSetupLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(second)
	second = u.RequestURI()
	// The same token posted twice at once: exactly one administrator.
	b1, b2, b3 := e.browser(t), e.browser(t), e.browser(t)
	csrf3 := b3.get(second).csrf()
	csrf1, csrf2 := b1.get(first).csrf(), b2.get(first).csrf()
	f1, f2 := withToken(first, setupForm("root1", "s3cret-pass")), withToken(first, setupForm("root2", "s3cret-pass"))
	f1.Set("csrf", csrf1)
	f2.Set("csrf", csrf2)
	done := make(chan page, 2)
	go func() { done <- b1.post("/console/setup", f1) }()
	go func() { done <- b2.post("/console/setup", f2) }()
	statuses := map[int]int{}
	for range 2 {
		statuses[(<-done).status]++
	}
	if statuses[http.StatusSeeOther] != 1 || statuses[http.StatusNotFound] != 1 {
		t.Fatalf("two uses of one setup link at once: %v, want one 303 and one 404", statuses)
	}
	f3 := withToken(second, setupForm("root3", "s3cret-pass"))
	f3.Set("csrf", csrf3)
	b3.post("/console/setup", f3).want(http.StatusNotFound)
}

// TestSetupLinkExpires: a setup link lasts an hour.
func TestSetupLinkExpires(t *testing.T) {
	e := newEnv(t)
	e.start(t)
	link := e.setupLink(t)
	b := e.browser(t)
	csrf := b.get(link).csrf()
	e.advance(time.Hour + time.Second)
	f := withToken(link, setupForm("root", "s3cret-pass"))
	f.Set("csrf", csrf)
	b.post("/console/setup", f).want(http.StatusNotFound, "setup link is not valid", "expired")
	// Nor does a made-up token work.
	f.Set("token", "not-a-token")
	b.post("/console/setup", f).want(http.StatusNotFound)
}

// TestNoSetupLinkWithAdmin: a tokend with an administrator logs no link,
// and the setup page says so.
func TestNoSetupLinkWithAdmin(t *testing.T) {
	e := newEnv(t)
	e.admin("root", "s3cret-pass")
	e.start(t)
	if strings.Contains(e.Logs(), "setup_url") {
		t.Fatalf("a setup link was logged with an administrator present: %s", e.Logs())
	}
	e.browser(t).get("/console/setup?token=x").want(http.StatusNotFound, "an administrator exists")
}
