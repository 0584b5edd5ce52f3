package console_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/console"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/tokendtest"
)

// env is a tokend serving the console over real HTTP (every exchange
// checked against the OpenAPI document), on a real SQLite file, with a
// settable clock.
type env struct {
	*tokendtest.Env
	console *console.Console
}

type envOptions struct {
	console console.Options
	limits  grant.Limits
}

func newEnv(t *testing.T, opts ...envOptions) *env {
	t.Helper()
	var o envOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	e := &env{}
	e.Env = tokendtest.New(t, tokendtest.Options{
		Config: func(c *grant.Config) { c.Limits = o.limits },
		Routes: func(te *tokendtest.Env) []httpapi.Routes {
			co := o.console
			co.Metrics, co.Log = te.Metrics, te.Log
			e.console = console.New(te.Engine, co)
			return []httpapi.Routes{e.console}
		},
	})
	return e
}

// start runs the console's Start, as serve does, until the test ends.
func (e *env) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := e.console.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// admin adds a user with the role tokend.admin and returns its id.
func (e *env) admin(name, password string) string {
	return e.AddUser(name, password, grant.RoleAdmin)
}

// browser is a client that keeps cookies as a browser would (by name,
// deleted by Max-Age<0) and does not follow redirects, so that tests see
// each answer.
type browser struct {
	t       *testing.T
	e       *env
	cookies map[string]*http.Cookie
	header  http.Header // sent with every request
}

func (e *env) browser(t *testing.T) *browser {
	return &browser{t: t, e: e, cookies: map[string]*http.Cookie{}, header: http.Header{}}
}

// page is one answer.
type page struct {
	t      *testing.T
	status int
	header http.Header
	body   string
}

func (p page) location() string { return p.header.Get("Location") }

// csrf returns the CSRF token of the page's forms.
func (p page) csrf() string {
	p.t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(p.body)
	if m == nil {
		p.t.Fatalf("no CSRF token on the page (%d): %s", p.status, p.body)
	}
	return m[1]
}

// has reports whether the page contains s, in its markup or in its text
// (tags dropped, entities decoded).
func (p page) has(s string) bool {
	text := html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(p.body, ""))
	return strings.Contains(html.UnescapeString(p.body), s) || strings.Contains(text, s)
}

func (p page) want(status int, texts ...string) page {
	p.t.Helper()
	if p.status != status {
		p.t.Fatalf("status %d, want %d; Location %q; body: %s", p.status, status, p.location(), p.body)
	}
	for _, s := range texts {
		if !p.has(s) {
			p.t.Fatalf("the page lacks %q: %s", s, p.body)
		}
	}
	return p
}

// redirect checks that the page sends the browser to a path starting with
// prefix.
func (p page) redirect(prefix string) page {
	p.t.Helper()
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), prefix) {
		p.t.Fatalf("status %d, Location %q; want 303 to %s…; body: %s", p.status, p.location(), prefix, p.body)
	}
	return p
}

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.Srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	for _, c := range b.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	client := *b.e.Srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return page{t: b.t, status: res.StatusCode, header: res.Header, body: string(raw)}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.do("GET", path, nil) }

// post sends a form as is (no CSRF token added).
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	return b.do("POST", path, form)
}

// submit fetches the page at from, then posts form to path with the CSRF
// token of that page's forms.
func (b *browser) submit(from, path string, form url.Values) page {
	b.t.Helper()
	csrf := b.get(from).csrf()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("csrf", csrf)
	return b.do("POST", path, f)
}

// signin signs in with a username and password and returns the answer.
func (b *browser) signin(username, password string) page {
	b.t.Helper()
	return b.submit("/console/signin", "/console/signin", url.Values{"username": {username}, "password": {password}})
}

// mustSignin signs in and fails the test unless it worked.
func (b *browser) mustSignin(username, password string) {
	b.t.Helper()
	b.signin(username, password).redirect("/console/")
	b.get("/console/").want(200, "Overview")
}

// sessionCookie returns the sign-in cookie the browser holds, or nil.
func (b *browser) sessionCookie() *http.Cookie {
	for name, c := range b.cookies {
		if strings.HasSuffix(name, "tokend_console") {
			return c
		}
	}
	return nil
}

// advance moves the env's clock.
func (e *env) advance(d time.Duration) { e.Clock.Advance(d) }
