package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// A sign-in is a random token in a cookie (HttpOnly, SameSite=Strict;
// Secure with the __Host- prefix over TLS) and, in the store, the token's
// hash with the sign-in's times: the store is the truth, so signing out
// on one node signs out on all, and a copy of the database signs no one
// in. The CSRF token of the sign-in's forms is a MAC of the cookie's
// token: a page on another site can neither read it nor compute it, and
// the server need not store it.

// touchEvery bounds the writes of the idle clock: a sign-in's LastSeenAt
// moves at most this often.
const touchEvery = 15 * time.Second

// maxForm bounds a form body.
const maxForm = 64 << 10

// signin is a request's signed-in administrator.
type signin struct {
	User *tokend.User
	hash []byte
	CSRF string
}

// view starts the view of a page for s (which may be nil).
func (s *signin) view(title, nav string) *view {
	v := &view{Title: title, Nav: nav}
	if s != nil {
		v.Admin, v.CSRF = s.User, s.CSRF
	}
	return v
}

// secure reports whether r's cookies get the Secure flag and __Host-.
func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.opts.Secure }

func (c *Console) cookieName(r *http.Request, base string) string {
	if c.secure(r) {
		return "__Host-" + base
	}
	return base
}

// setCookie sets (maxAge > 0) or clears (maxAge < 0) a console cookie.
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge int) {
	ck := &http.Cookie{Name: c.cookieName(r, base), Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if c.secure(r) {
		ck.Secure, ck.Path = true, "/" // __Host- wants Path=/
	}
	http.SetCookie(w, ck)
}

func (c *Console) cookie(r *http.Request, base string) string {
	ck, err := r.Cookie(c.cookieName(r, base))
	if err != nil {
		return ""
	}
	return ck.Value
}

const (
	sessionCookie = "tokend_console"
	preCookie     = "tokend_console_pre" // the CSRF secret of the sign-in and setup forms
)

// csrfOf derives the CSRF token of the forms of a cookie's holder.
func csrfOf(cookieValue, purpose string) string {
	m := hmac.New(sha256.New, []byte(cookieValue))
	m.Write([]byte("tokend console csrf: " + purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// startSession signs u in: a new sign-in in the store and its cookie.
func (c *Console) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, u *tokend.User) error {
	now := c.now()
	if err := c.store.PurgeConsoleSessions(ctx, now, c.opts.IdleTimeout); err != nil {
		c.log.Warn("purge console sessions", "err", err)
	}
	tok := randomToken()
	cs := &tokend.ConsoleSession{TokenHash: hashToken(tok), UserID: u.ID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(c.opts.AbsoluteTimeout)}
	if err := c.store.CreateConsoleSession(ctx, cs); err != nil {
		return err
	}
	c.setCookie(w, r, sessionCookie, tok, int(c.opts.AbsoluteTimeout/time.Second))
	c.setCookie(w, r, preCookie, "", -1)
	c.note(ctx, "console.signed_in", u.ID, "user:"+u.ID)
	return nil
}

// session returns the request's sign-in, or nil and why there is none
// (a key of signinNotes; "" when the request had no cookie). A sign-in
// that timed out, or whose user was disabled, deleted, lost the role or
// changed password since, is ended here.
func (c *Console) session(ctx context.Context, r *http.Request) (*signin, string, error) {
	tok := c.cookie(r, sessionCookie)
	if tok == "" {
		return nil, "", nil
	}
	hash := hashToken(tok)
	cs, err := c.store.ConsoleSession(ctx, hash)
	if tokend.ErrorCode(err) == tokend.ENOTFOUND {
		return nil, "ended", nil
	}
	if err != nil {
		return nil, "", err
	}
	now := c.now()
	end := func(why string) (*signin, string, error) {
		if err := c.store.EndConsoleSession(ctx, hash); err != nil {
			return nil, "", err
		}
		return nil, why, nil
	}
	switch {
	case !now.Before(cs.ExpiresAt):
		return end("expired")
	case now.Sub(cs.LastSeenAt) >= c.opts.IdleTimeout:
		return end("idle")
	}
	u, err := c.mgr.User(ctx, cs.UserID)
	if tokend.ErrorCode(err) == tokend.ENOTFOUND {
		return end("revoked")
	}
	if err != nil {
		return nil, "", err
	}
	if !isAdmin(u) || cs.CreatedAt.Before(u.TokensNotBefore) {
		return end("revoked")
	}
	if now.Sub(cs.LastSeenAt) >= touchEvery {
		if err := c.store.TouchConsoleSession(ctx, hash, now); err != nil {
			return nil, "", err
		}
	}
	return &signin{User: u, hash: hash, CSRF: csrfOf(tok, "session")}, "", nil
}

// isAdmin reports whether u may use the console.
func isAdmin(u *tokend.User) bool {
	return !u.Disabled && u.ClientID == "" && slices.Contains(u.Roles, grant.RoleAdmin)
}

// page is a handler of a signed-in administrator's request; it returns
// an error instead of writing it.
type page func(w http.ResponseWriter, r *http.Request, s *signin) error

// authed runs h for a signed-in administrator: a request without a
// sign-in goes to the sign-in page, and a POST must carry the sign-in's
// CSRF token. Changes are made in the administrator's name.
func (c *Console) authed(h page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := grant.WithDialect(r.Context(), Dialect)
		s, why, err := c.session(ctx, r)
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		if s == nil {
			if why != "" {
				c.setCookie(w, r, sessionCookie, "", -1)
			}
			to := Prefix + "signin"
			q := url.Values{}
			if why != "" {
				q.Set("m", why)
			}
			if r.Method == http.MethodGet && r.URL.Path != Prefix {
				q.Set("next", r.URL.RequestURI())
			}
			if len(q) > 0 {
				to += "?" + q.Encode()
			}
			seeOther(w, r, to)
			return
		}
		if r.Method == http.MethodPost {
			if err := c.parseForm(w, r); err != nil {
				c.fail(w, r, s, err)
				return
			}
			if !sameToken(r.PostForm.Get("csrf"), s.CSRF) {
				c.fail(w, r, s, errCSRF)
				return
			}
		}
		ctx = grant.WithActor(ctx, "user:"+s.User.ID)
		if err := h(w, r.WithContext(ctx), s); err != nil {
			c.fail(w, r, s, err)
		}
	}
}

// parseForm reads a form body of at most maxForm bytes.
func (c *Console) parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errTooLarge
		}
		return tokend.Errorf(tokend.EINVALID, "The form could not be read.")
	}
	return nil
}

// safeNext returns where to go after signing in: a path of the console
// from the sign-in form, never another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

// audit records an event of the console that is no management change
// (a sign-in or sign-out).
func (c *Console) note(ctx context.Context, event, subject, actor string) {
	err := c.store.AppendAudit(context.WithoutCancel(ctx), []tokend.AuditEvent{{
		At: c.now(), Event: event, Subject: subject, Dialect: Dialect, IP: tokend.ClientIP(ctx), Outcome: "success", Actor: actor,
	}})
	if err != nil {
		c.log.Warn("audit console event", "event", event, "err", err)
	}
}
