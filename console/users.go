package console

import (
	"net/http"
	"net/url"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

const pageSize = 50

type usersView struct {
	Prefix string
	Items  []*tokend.User
	Next   string // the next page's URL; "" on the last
	First  bool
}

// users lists the users of no client app, by name prefix, a page at a time.
func (c *Console) users(w http.ResponseWriter, r *http.Request, s *signin) error {
	q := r.URL.Query()
	none := ""
	uq := tokend.UserQuery{ClientID: &none, Prefix: q.Get("q"), After: q.Get("after"), Limit: pageSize}
	items, err := c.mgr.Users(r.Context(), uq)
	if err != nil {
		return err
	}
	d := usersView{Prefix: uq.Prefix, Items: items, First: uq.After == ""}
	if len(items) == pageSize {
		d.Next = Prefix + "users?" + url.Values{"q": {uq.Prefix}, "after": {items[len(items)-1].ID}}.Encode()
	}
	v := s.view("Users", "users")
	v.Flash, v.Data = flashOf(r), d
	v.Form = map[string]string{"q": uq.Prefix}
	c.render(w, http.StatusOK, "users", v)
	return nil
}

func (c *Console) newUser(w http.ResponseWriter, r *http.Request, s *signin) error {
	v := s.view("New user", "users")
	v.Form = map[string]string{}
	c.render(w, http.StatusOK, "user_new", v)
	return nil
}

func (c *Console) createUser(w http.ResponseWriter, r *http.Request, s *signin) error {
	f := r.PostForm
	n := grant.NewUser{Username: f.Get("username"), Password: f.Get("password"), Roles: words(f.Get("roles"))}
	claims, cerrs := claimsField(f.Get("claims"))
	n.Claims = claims
	errs := append(n.Check(), cerrs...)
	var u *tokend.User
	err := tokend.Invalid(errs)
	if err == nil {
		u, err = c.mgr.CreateUser(r.Context(), n)
	}
	if err != nil {
		v := s.view("New user", "users")
		v.formOf(r)
		if !v.setFieldErrors(err) {
			return err
		}
		c.render(w, http.StatusBadRequest, "user_new", v)
		return nil
	}
	seeOther(w, r, Prefix+"users/"+url.PathEscape(u.ID)+"?done=user-created")
	return nil
}

type userView struct {
	User       *tokend.User
	Client     *tokend.ClientApp // the app of an end user
	Sessions   []*tokend.Session
	NextSess   string
	IsSelf     bool
	ClaimsText string
}

// user shows one user: details, the edit form, the password form, and
// the user's live sessions.
func (c *Console) user(w http.ResponseWriter, r *http.Request, s *signin) error {
	v := s.view("User", "users")
	v.Flash = flashOf(r)
	if err := c.userPage(r, s, v, r.PathValue("id")); err != nil {
		return err
	}
	c.render(w, http.StatusOK, "user", v)
	return nil
}

// userPage fills v with the user page's data; a form shown again with
// errors keeps the values the administrator typed.
func (c *Console) userPage(r *http.Request, s *signin, v *view, id string) error {
	ctx := r.Context()
	u, err := c.mgr.User(ctx, id)
	if err != nil {
		return err
	}
	d := userView{User: u, IsSelf: u.ID == s.User.ID, ClaimsText: claimsText(u.Claims)}
	if u.ClientID != "" {
		if d.Client, err = c.mgr.Client(ctx, u.ClientID); err != nil && tokend.ErrorCode(err) != tokend.ENOTFOUND {
			return err
		}
	}
	after := r.URL.Query().Get("after")
	if d.Sessions, err = c.mgr.UserSessions(ctx, u.ID, after, pageSize); err != nil {
		return err
	}
	if len(d.Sessions) == pageSize {
		d.NextSess = Prefix + "users/" + url.PathEscape(u.ID) + "?after=" + url.QueryEscape(d.Sessions[len(d.Sessions)-1].ID)
	}
	v.Title, v.Data = "User "+u.Username, d
	if v.Form == nil {
		v.Form = map[string]string{"roles": joinWords(u.Roles), "claims": d.ClaimsText}
	}
	return nil
}

func joinWords(l []string) string {
	out := ""
	for i, w := range l {
		if i > 0 {
			out += " "
		}
		out += w
	}
	return out
}

// updateUser saves a user's roles and custom claims, if the user is still
// as the form showed it.
func (c *Console) updateUser(w http.ResponseWriter, r *http.Request, s *signin) error {
	id := r.PathValue("id")
	roles := words(r.PostForm.Get("roles"))
	claims, cerrs := claimsField(r.PostForm.Get("claims"))
	p := grant.UserPatch{Roles: &roles, Claims: &claims}
	err := tokend.Invalid(append(p.Check(), cerrs...))
	if err == nil {
		_, err = c.mgr.UpdateUser(r.Context(), id, p, version(r))
	}
	if tokend.ErrorCode(err) == tokend.EPRECONDITION {
		err = tokend.Errorf(tokend.EPRECONDITION, "Someone changed this user since you opened the page. Reload it and make your change again.")
	}
	if err != nil {
		v := s.view("User", "users")
		v.formOf(r)
		if !v.setFieldErrors(err) {
			return err
		}
		if perr := c.userPage(r, s, v, id); perr != nil {
			return perr
		}
		c.render(w, http.StatusBadRequest, "user", v)
		return nil
	}
	seeOther(w, r, Prefix+"users/"+url.PathEscape(id)+"?done=user-updated")
	return nil
}

func (c *Console) disableUser(disabled bool) page {
	return func(w http.ResponseWriter, r *http.Request, s *signin) error {
		id := r.PathValue("id")
		u, err := c.mgr.User(r.Context(), id)
		if err != nil {
			return err
		}
		back := Prefix + "users/" + url.PathEscape(u.ID)
		if disabled && !c.confirmed(w, r, s, "Disable the user "+u.Username+"? Every session of the user ends, and the user can no longer sign in.", "Disable user", back) {
			return nil
		}
		if _, err := c.mgr.SetUserDisabled(r.Context(), u.ID, disabled); err != nil {
			return err
		}
		done := map[bool]string{true: "user-disabled", false: "user-enabled"}[disabled]
		seeOther(w, r, back+"?done="+done)
		return nil
	}
}

func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request, s *signin) error {
	u, err := c.mgr.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !c.confirmed(w, r, s, "Delete the user "+u.Username+"? This cannot be undone: the user's sessions and tokens stop working at once.", "Delete user", Prefix+"users/"+url.PathEscape(u.ID)) {
		return nil
	}
	if err := c.mgr.DeleteUser(r.Context(), u.ID, nil); err != nil {
		return err
	}
	seeOther(w, r, Prefix+"users?done=user-deleted")
	return nil
}

// setPassword gives a user a new password, which ends the user's sessions.
func (c *Console) setPassword(w http.ResponseWriter, r *http.Request, s *signin) error {
	id := r.PathValue("id")
	pw := r.PostForm.Get("password")
	var err error
	if pw != "" && r.PostForm.Get("password2") != pw {
		err = tokend.Invalid([]tokend.FieldError{{Field: "password2", Detail: "The two passwords differ."}})
	} else {
		err = c.mgr.SetUserPassword(r.Context(), id, pw, false)
	}
	if err != nil {
		v := s.view("User", "users")
		v.formOf(r)
		if !v.setFieldErrors(err) {
			return err
		}
		if perr := c.userPage(r, s, v, id); perr != nil {
			return perr
		}
		c.render(w, http.StatusBadRequest, "user", v)
		return nil
	}
	seeOther(w, r, Prefix+"users/"+url.PathEscape(id)+"?done=password-set")
	return nil
}

// revokeSession ends one login session; the form names the page to go
// back to (a user's or a client's), as an id only.
func (c *Console) revokeSession(w http.ResponseWriter, r *http.Request, s *signin) error {
	back := Prefix
	if u := r.PostForm.Get("user"); u != "" {
		back = Prefix + "users/" + url.PathEscape(u)
	}
	if !c.confirmed(w, r, s, "Revoke this session? Its refresh token and the access tokens issued in it stop working at once.", "Revoke session", back) {
		return nil
	}
	if err := c.mgr.RevokeSession(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	seeOther(w, r, back+"?done=session-revoked")
	return nil
}
