package adminapi

import (
	"net/http"
	"strings"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// merge reports the type problems of a request with the engine's checks
// of the fields that were well typed, so that a caller learns of every
// bad field at once, and of each only once.
func merge(typeErrs, checks []tokend.FieldError) error {
	bad := map[string]bool{}
	for _, e := range typeErrs {
		bad[rootField(e.Field)] = true
	}
	out := typeErrs
	for _, e := range checks {
		if !bad[rootField(e.Field)] {
			out = append(out, e)
		}
	}
	return tokend.Invalid(out)
}

// rootField is the top-level member a field path starts with.
func rootField(f string) string {
	if i := strings.IndexAny(f, ".["); i >= 0 {
		return f[:i]
	}
	return f
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r)
	limit, after := q.limit(), q.cursor("users")
	uq := tokend.UserQuery{Search: q.get("q"), Disabled: q.boolean("disabled"), After: after, Limit: limit + 1}
	if id := q.get("client_id"); id != "" {
		uq.ClientID = &id
	}
	if err := q.err(); err != nil {
		return err
	}
	users, err := a.Manager.Users(r.Context(), uq)
	if err != nil {
		return err
	}
	users, next := trim(users, limit, func(u *tokend.User) string { return u.ID })
	items := make([]userJSON, len(users))
	for i, u := range users {
		items[i] = userOut(u)
	}
	return writeJSON(w, http.StatusOK, pageOf(items, "users", next))
}

// pageOf makes a page of items whose next page starts after position next.
func pageOf(items any, kind, next string) page {
	p := page{Items: items}
	if next != "" {
		p.NextCursor = encodeCursor(kind, next)
	}
	return p
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) error {
	b, err := readObject(w, r)
	if err != nil {
		return err
	}
	var n grant.NewUser
	if v := b.str("username"); v != nil {
		n.Username = *v
	}
	if v := b.str("password"); v != nil {
		n.Password = *v
		if *v == "" {
			b.bad("password", "must not be empty (leave it out for a user without a password)")
		}
	}
	if v := b.strs("roles"); v != nil {
		n.Roles = *v
	}
	if v := b.object("claims"); v != nil {
		n.Claims = *v
	}
	if v := b.boolean("disabled"); v != nil {
		n.Disabled = *v
	}
	if errs := b.done(); len(errs) > 0 {
		return merge(errs, n.Check())
	}
	u, err := a.Manager.CreateUser(r.Context(), n)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/users/"+u.ID)
	w.Header().Set("ETag", userTag(u))
	return writeJSON(w, http.StatusCreated, userOut(u))
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Manager.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", userTag(u))
	return writeJSON(w, http.StatusOK, userOut(u))
}

func (a *API) patchUser(w http.ResponseWriter, r *http.Request) error {
	b, err := readObject(w, r)
	if err != nil {
		return err
	}
	p := grant.UserPatch{Username: b.str("username"), Roles: b.strs("roles"), Claims: b.object("claims"), Disabled: b.boolean("disabled")}
	if errs := b.done(); len(errs) > 0 {
		return merge(errs, p.Check())
	}
	u, err := a.Manager.UpdateUser(r.Context(), r.PathValue("id"), p, precondition(r, "u"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", userTag(u))
	return writeJSON(w, http.StatusOK, userOut(u))
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := a.Manager.DeleteUser(r.Context(), r.PathValue("id"), precondition(r, "u")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) setPassword(w http.ResponseWriter, r *http.Request) error {
	b, err := readObject(w, r)
	if err != nil {
		return err
	}
	pw := b.str("password")
	if _, given := b.m["password"]; !given {
		b.bad("password", "is required")
	}
	if errs := b.done(); len(errs) > 0 {
		return tokend.Invalid(errs)
	}
	if err := a.Manager.SetUserPassword(r.Context(), r.PathValue("id"), *pw, false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listUserSessions(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r)
	limit, after := q.limit(), q.cursor("sessions")
	if err := q.err(); err != nil {
		return err
	}
	sessions, err := a.Manager.UserSessions(r.Context(), r.PathValue("id"), after, limit+1)
	if err != nil {
		return err
	}
	sessions, next := trim(sessions, limit, func(s *tokend.Session) string { return s.ID })
	items := make([]sessionJSON, len(sessions))
	for i, s := range sessions {
		items[i] = sessionOut(s)
	}
	return writeJSON(w, http.StatusOK, pageOf(items, "sessions", next))
}

func (a *API) revokeSession(w http.ResponseWriter, r *http.Request) error {
	if err := a.Manager.RevokeSession(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
