package console

import (
	"net/http"
	"net/url"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

type clientsView struct {
	Items []*tokend.ClientApp
	Next  string
	First bool
}

func (c *Console) clients(w http.ResponseWriter, r *http.Request, s *signin) error {
	after := r.URL.Query().Get("after")
	items, err := c.mgr.Clients(r.Context(), tokend.ClientQuery{After: after, Limit: pageSize})
	if err != nil {
		return err
	}
	d := clientsView{Items: items, First: after == ""}
	if len(items) == pageSize {
		d.Next = Prefix + "clients?after=" + url.QueryEscape(items[len(items)-1].ID)
	}
	v := s.view("Client apps", "clients")
	v.Flash, v.Data = flashOf(r), d
	c.render(w, http.StatusOK, "clients", v)
	return nil
}

// grantChoices are the grants a client form offers, in order.
var grantChoices = grant.KnownGrants

type clientFormView struct {
	Grants []string
	Modes  []string
}

func clientForm() clientFormView {
	return clientFormView{Grants: grantChoices, Modes: []string{tokend.ModeProduction, tokend.ModeSandbox}}
}

func (c *Console) newClient(w http.ResponseWriter, r *http.Request, s *signin) error {
	v := s.view("New client app", "clients")
	v.Form, v.Multi = map[string]string{"mode": tokend.ModeProduction}, map[string][]string{"grants": {tokend.GrantClientCredentials}}
	v.Data = clientForm()
	c.render(w, http.StatusOK, "client_new", v)
	return nil
}

// secretView shows a client's secret, this once.
type secretView struct {
	Client  *tokend.ClientApp
	Secret  string
	Rotated bool
}

func (c *Console) createClient(w http.ResponseWriter, r *http.Request, s *signin) error {
	f := r.PostForm
	n := grant.NewClient{Name: f.Get("name"), Public: f.Get("public") == "yes", Grants: f["grants"], Scopes: words(f.Get("scopes")), Mode: f.Get("mode")}
	ttl, terrs := durationField("access_ttl", f.Get("access_ttl"))
	n.AccessTTL = ttl
	var cl *tokend.ClientApp
	var sec string
	err := tokend.Invalid(append(n.Check(), terrs...))
	if err == nil {
		cl, sec, err = c.mgr.CreateClient(r.Context(), n)
	}
	if err != nil {
		v := s.view("New client app", "clients")
		v.formOf(r)
		v.Data = clientForm()
		if !v.setFieldErrors(err) {
			return err
		}
		c.render(w, http.StatusBadRequest, "client_new", v)
		return nil
	}
	v := s.view("Client app created", "clients")
	v.Data = secretView{Client: cl, Secret: sec}
	c.render(w, http.StatusOK, "client_secret", v)
	return nil
}

type clientView struct {
	clientFormView
	Client   *tokend.ClientApp
	PrevLive bool // the previous secret still works
	EndUsers []*tokend.User
	NextEnd  string
}

func (c *Console) client(w http.ResponseWriter, r *http.Request, s *signin) error {
	v := s.view("Client app", "clients")
	v.Flash = flashOf(r)
	if err := c.clientPage(r, v, r.PathValue("id")); err != nil {
		return err
	}
	c.render(w, http.StatusOK, "client", v)
	return nil
}

// clientPage fills v with a client app's page: its settings, the edit
// form, and its end users (a Taiki app's), a page at a time.
func (c *Console) clientPage(r *http.Request, v *view, id string) error {
	ctx := r.Context()
	cl, err := c.mgr.Client(ctx, id)
	if err != nil {
		return err
	}
	d := clientView{clientFormView: clientForm(), Client: cl, PrevLive: len(cl.PrevSecretHash) > 0 && c.now().Before(cl.PrevSecretUntil)}
	after := r.URL.Query().Get("after")
	if d.EndUsers, err = c.mgr.Users(ctx, tokend.UserQuery{ClientID: &cl.ID, After: after, Limit: pageSize}); err != nil {
		return err
	}
	if len(d.EndUsers) == pageSize {
		d.NextEnd = Prefix + "clients/" + url.PathEscape(cl.ID) + "?after=" + url.QueryEscape(d.EndUsers[len(d.EndUsers)-1].ID)
	}
	v.Title, v.Data = "Client app "+cl.Name, d
	if v.Form == nil {
		v.Form = map[string]string{"scopes": joinWords(cl.Scopes), "mode": cl.Mode, "access_ttl": ttlText(cl.AccessTTL)}
		v.Multi = map[string][]string{"grants": cl.Grants}
	}
	return nil
}

func ttlText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// updateClient saves a client's grants, scopes, mode and access-token
// lifetime, if the client is still as the form showed it.
func (c *Console) updateClient(w http.ResponseWriter, r *http.Request, s *signin) error {
	id := r.PathValue("id")
	f := r.PostForm
	grants, scopes, mode := f["grants"], words(f.Get("scopes")), f.Get("mode")
	if grants == nil {
		grants = []string{}
	}
	ttl, terrs := durationField("access_ttl", f.Get("access_ttl"))
	p := grant.ClientPatch{Grants: &grants, Scopes: &scopes, Mode: &mode, AccessTTL: &ttl}
	cl, err := c.mgr.Client(r.Context(), id)
	if err != nil {
		return err
	}
	// Every bad field at once, those the form could not read among them.
	err = tokend.Invalid(append(p.Check(cl.Public), terrs...))
	if err == nil {
		_, err = c.mgr.UpdateClient(r.Context(), id, p, version(r))
	}
	if tokend.ErrorCode(err) == tokend.EPRECONDITION {
		err = tokend.Errorf(tokend.EPRECONDITION, "Someone changed this client app since you opened the page. Reload it and make your change again.")
	}
	if err != nil {
		v := s.view("Client app", "clients")
		v.formOf(r)
		if !v.setFieldErrors(err) {
			return err
		}
		if perr := c.clientPage(r, v, id); perr != nil {
			return perr
		}
		c.render(w, http.StatusBadRequest, "client", v)
		return nil
	}
	seeOther(w, r, Prefix+"clients/"+url.PathEscape(id)+"?done=client-updated")
	return nil
}

// rotateSecret gives a client a new secret, shown once; the old one keeps
// working for the overlap asked for (none by default).
func (c *Console) rotateSecret(w http.ResponseWriter, r *http.Request, s *signin) error {
	id := r.PathValue("id")
	cl, err := c.mgr.Client(r.Context(), id)
	if err != nil {
		return err
	}
	overlap, oerrs := durationField("overlap", r.PostForm.Get("overlap"))
	if err := tokend.Invalid(oerrs); err != nil {
		return c.clientError(w, r, s, id, err)
	}
	what := "The old secret stops working at once."
	if overlap > 0 {
		what = "The old secret keeps working for " + overlap.String() + "."
	}
	back := Prefix + "clients/" + url.PathEscape(cl.ID)
	if !c.confirmed(w, r, s, "Rotate the secret of "+cl.Name+"? "+what, "Rotate secret", back) {
		return nil
	}
	sec, cl, err := c.mgr.RotateSecret(r.Context(), cl.ID, overlap)
	if err != nil {
		return c.clientError(w, r, s, id, err)
	}
	v := s.view("New secret", "clients")
	v.Data = secretView{Client: cl, Secret: sec, Rotated: true}
	c.render(w, http.StatusOK, "client_secret", v)
	return nil
}

// clientError shows the client page again with err's bad fields, or
// returns err when it names none.
func (c *Console) clientError(w http.ResponseWriter, r *http.Request, s *signin, id string, err error) error {
	v := s.view("Client app", "clients")
	v.formOf(r)
	if !v.setFieldErrors(err) {
		return err
	}
	v.Form, v.Multi = nil, nil // the edit form shows the stored values
	if perr := c.clientPage(r, v, id); perr != nil {
		return perr
	}
	v.Form["overlap"] = r.PostForm.Get("overlap")
	c.render(w, http.StatusBadRequest, "client", v)
	return nil
}

func (c *Console) disableClient(disabled bool) page {
	return func(w http.ResponseWriter, r *http.Request, s *signin) error {
		cl, err := c.mgr.Client(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		back := Prefix + "clients/" + url.PathEscape(cl.ID)
		if disabled && !c.confirmed(w, r, s, "Disable the client app "+cl.Name+"? Its secret and the tokens issued to it stop working at once.", "Disable client app", back) {
			return nil
		}
		if _, err := c.mgr.SetClientDisabled(r.Context(), cl.ID, disabled); err != nil {
			return err
		}
		seeOther(w, r, back+"?done="+map[bool]string{true: "client-disabled", false: "client-enabled"}[disabled])
		return nil
	}
}

func (c *Console) deleteClient(w http.ResponseWriter, r *http.Request, s *signin) error {
	cl, err := c.mgr.Client(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !c.confirmed(w, r, s, "Delete the client app "+cl.Name+" with its end users? This cannot be undone.", "Delete client app", Prefix+"clients/"+url.PathEscape(cl.ID)) {
		return nil
	}
	if err := c.mgr.DeleteClient(r.Context(), cl.ID, nil); err != nil {
		return err
	}
	seeOther(w, r, Prefix+"clients?done=client-deleted")
	return nil
}
