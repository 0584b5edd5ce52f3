package console

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// Signing in and out, and the first-run setup. These forms come before
// any sign-in, so their CSRF token is a MAC of a random cookie of their
// own ("pre"), set when the form is shown.

// preForm returns the CSRF token of the sign-in and setup forms, setting
// their cookie if the browser has none yet.
func (c *Console) preForm(w http.ResponseWriter, r *http.Request, purpose string) string {
	pre := c.cookie(r, preCookie)
	if len(pre) < 43 {
		pre = randomToken()
		c.setCookie(w, r, preCookie, pre, int(time.Hour/time.Second))
	}
	return csrfOf(pre, purpose)
}

// checkPre checks the CSRF token of a sign-in or setup form.
func (c *Console) checkPre(w http.ResponseWriter, r *http.Request, purpose string) error {
	if err := c.parseForm(w, r); err != nil {
		return err
	}
	pre := c.cookie(r, preCookie)
	if pre == "" || !sameToken(r.PostForm.Get("csrf"), csrfOf(pre, purpose)) {
		return errCSRF
	}
	return nil
}

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s, _, err := c.session(ctx, r); err == nil && s != nil {
		seeOther(w, r, safeNext(r.URL.Query().Get("next")))
		return
	}
	v := &view{Title: "Sign in", Form: map[string]string{"next": r.URL.Query().Get("next")}}
	v.CSRF = c.preForm(w, r, "signin")
	v.Flash = signinNotes[r.URL.Query().Get("m")]
	c.render(w, http.StatusOK, "signin", v)
}

// signin checks an administrator's password with the engine's CheckUser,
// so that the lockout, the per-IP limit and the bounded hashing apply as
// on every login.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	ctx := grant.WithDialect(r.Context(), Dialect)
	if err := c.checkPre(w, r, "signin"); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	v := &view{Title: "Sign in"}
	v.formOf(r)
	again := func(code int, msg string) {
		v.Error = msg
		v.CSRF = c.preForm(w, r, "signin")
		c.render(w, code, "signin", v)
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	var missing []tokend.FieldError
	if username == "" {
		missing = append(missing, tokend.FieldError{Field: "username", Detail: "Enter your username."})
	}
	if password == "" {
		missing = append(missing, tokend.FieldError{Field: "password", Detail: "Enter your password."})
	}
	if len(missing) > 0 {
		v.setFieldErrors(tokend.Invalid(missing))
		again(http.StatusBadRequest, v.Error)
		return
	}
	u, err := c.engine.CheckUser(ctx, username, password)
	if err != nil {
		c.engine.CountFailure(Dialect, tokend.ErrorCode(err))
		switch tokend.ErrorCode(err) {
		case tokend.EINVALIDGRANT:
			again(http.StatusUnauthorized, "Wrong username or password.")
		case tokend.ETOOMANY:
			w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
			again(http.StatusTooManyRequests, "Too many failed sign-ins: signing in is locked for a while. Try again in "+waitText(tokend.RetryAfter(err))+".")
		default:
			code, msg := c.status(r, w, err)
			again(code, msg)
		}
		return
	}
	if !isAdmin(u) {
		c.engine.CountFailure(Dialect, tokend.EFORBIDDEN)
		again(http.StatusForbidden, "This account may not use the console: it needs the role "+grant.RoleAdmin+".")
		return
	}
	if err := c.startSession(ctx, w, r, u); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	seeOther(w, r, safeNext(r.PostForm.Get("next")))
}

// waitText says how long to wait, in words.
func waitText(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d seconds", int(math.Ceil(d.Seconds())))
	}
	m := int(math.Ceil(d.Minutes()))
	if m == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", m)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *signin) error {
	if err := c.store.EndConsoleSession(r.Context(), s.hash); err != nil {
		return err
	}
	c.setCookie(w, r, sessionCookie, "", -1)
	c.note(r.Context(), "console.signed_out", s.User.ID, "user:"+s.User.ID)
	seeOther(w, r, Prefix+"signin?m=signedout")
	return nil
}

// errSetupDone: the setup link is spent, expired, or not needed.
var errSetupDone = &tokend.Error{Code: tokend.ENOTFOUND, Message: "This setup link is not valid: it was used already, it expired (links last an hour), " +
	"or an administrator exists. Sign in, or create an administrator with: tokend user add NAME --role " + grant.RoleAdmin +
	" (restarting tokend while no administrator exists logs a new link)."}

func (c *Console) setupPage(w http.ResponseWriter, r *http.Request) {
	if has, err := c.hasAdmin(r.Context()); err != nil || has {
		c.fail(w, r, nil, orSetupDone(err))
		return
	}
	v := &view{Title: "Create the first administrator", Form: map[string]string{"token": r.URL.Query().Get("token")}}
	v.CSRF = c.preForm(w, r, "setup")
	c.render(w, http.StatusOK, "setup", v)
}

func orSetupDone(err error) error {
	if err != nil {
		return err
	}
	return errSetupDone
}

// setup creates the first administrator with a one-time setup link: the
// token is spent in the store (so once across every node), then the user
// is created and signed in. Should the creation fail, the token is put
// back, so that a typo does not cost the link.
func (c *Console) setup(w http.ResponseWriter, r *http.Request) {
	ctx := grant.WithActor(grant.WithDialect(r.Context(), Dialect), "console-setup")
	if err := c.checkPre(w, r, "setup"); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	if has, err := c.hasAdmin(ctx); err != nil || has {
		c.fail(w, r, nil, orSetupDone(err))
		return
	}
	v := &view{Title: "Create the first administrator"}
	v.formOf(r)
	n := grant.NewUser{Username: r.PostForm.Get("username"), Password: r.PostForm.Get("password"), Roles: []string{grant.RoleAdmin}}
	fields := n.Check()
	if n.Password == "" {
		fields = append(fields, tokend.FieldError{Field: "password", Detail: "Choose a password."})
	} else if r.PostForm.Get("password2") != n.Password {
		fields = append(fields, tokend.FieldError{Field: "password2", Detail: "The two passwords differ."})
	}
	if err := tokend.Invalid(fields); err != nil {
		v.setFieldErrors(err)
		v.CSRF = c.preForm(w, r, "setup")
		c.render(w, http.StatusBadRequest, "setup", v)
		return
	}
	hash := hashToken(r.PostForm.Get("token"))
	expires, err := c.store.UseSetupToken(ctx, hash, c.now())
	if err != nil {
		c.fail(w, r, nil, orSetupDone(ignoreNotFound(err)))
		return
	}
	u, err := c.mgr.CreateUser(ctx, n)
	if err != nil {
		if perr := c.store.CreateSetupToken(context.WithoutCancel(ctx), hash, expires); perr != nil {
			c.log.Warn("put back a setup token", "err", perr)
		}
		if v.setFieldErrors(err) {
			v.CSRF = c.preForm(w, r, "setup")
			c.render(w, http.StatusBadRequest, "setup", v)
			return
		}
		c.fail(w, r, nil, err)
		return
	}
	if err := c.startSession(ctx, w, r, u); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	seeOther(w, r, Prefix+"?done=welcome")
}

func ignoreNotFound(err error) error {
	if tokend.ErrorCode(err) == tokend.ENOTFOUND {
		return nil
	}
	return err
}
