package adminapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

func (a *API) listClients(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r)
	limit, after := q.limit(), q.cursor("clients")
	if err := q.err(); err != nil {
		return err
	}
	clients, err := a.Manager.Clients(r.Context(), tokend.ClientQuery{After: after, Limit: limit + 1})
	if err != nil {
		return err
	}
	clients, next := trim(clients, limit, func(c *tokend.ClientApp) string { return c.ID })
	items := make([]clientJSON, len(clients))
	for i, c := range clients {
		items[i] = clientOut(c)
	}
	return writeJSON(w, http.StatusOK, pageOf(items, "clients", next))
}

func (a *API) createClient(w http.ResponseWriter, r *http.Request) error {
	b, err := readObject(w, r)
	if err != nil {
		return err
	}
	var n grant.NewClient
	if v := b.str("name"); v != nil {
		n.Name = *v
	}
	if v := b.strs("grants"); v != nil {
		n.Grants = *v
	}
	if v := b.strs("scopes"); v != nil {
		n.Scopes = *v
	}
	if v := b.str("mode"); v != nil {
		n.Mode = *v
	}
	if v := b.boolean("public"); v != nil {
		n.Public = *v
	}
	if v := b.seconds("access_ttl"); v != nil {
		n.AccessTTL = *v
	}
	if errs := b.done(); len(errs) > 0 {
		return merge(errs, n.Check())
	}
	c, sec, err := a.Manager.CreateClient(r.Context(), n)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/clients/"+c.ID)
	w.Header().Set("ETag", clientTag(c))
	out := struct {
		clientJSON
		ClientSecret string `json:"client_secret,omitempty"`
	}{clientOut(c), sec}
	return writeJSON(w, http.StatusCreated, out)
}

func (a *API) getClient(w http.ResponseWriter, r *http.Request) error {
	c, err := a.Manager.Client(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", clientTag(c))
	return writeJSON(w, http.StatusOK, clientOut(c))
}

func (a *API) patchClient(w http.ResponseWriter, r *http.Request) error {
	b, err := readObject(w, r)
	if err != nil {
		return err
	}
	p := grant.ClientPatch{
		Name: b.str("name"), Grants: b.strs("grants"), Scopes: b.strs("scopes"), Mode: b.str("mode"),
		AccessTTL: b.seconds("access_ttl"), Disabled: b.boolean("disabled"),
	}
	if errs := b.done(); len(errs) > 0 {
		c, err := a.Manager.Client(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		return merge(errs, p.Check(c.Public))
	}
	c, err := a.Manager.UpdateClient(r.Context(), r.PathValue("id"), p, precondition(r, "c"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", clientTag(c))
	return writeJSON(w, http.StatusOK, clientOut(c))
}

func (a *API) deleteClient(w http.ResponseWriter, r *http.Request) error {
	if err := a.Manager.DeleteClient(r.Context(), r.PathValue("id"), precondition(r, "c")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	b, err := readObject(w, r)
	if err != nil {
		return err
	}
	var overlap time.Duration
	if v := b.seconds("overlap"); v != nil {
		overlap = *v
	}
	if errs := b.done(); len(errs) > 0 {
		return tokend.Invalid(errs)
	}
	sec, c, err := a.Manager.RotateSecret(r.Context(), r.PathValue("id"), overlap)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", clientTag(c))
	return writeJSON(w, http.StatusOK, map[string]any{
		"client_id": c.ID, "client_secret": sec, "previous_secret_expires_at": clientOut(c).PreviousSecretExpiresAt,
	})
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) error {
	ks, err := a.Manager.Keys(r.Context())
	if err != nil {
		return err
	}
	items := make([]keyJSON, len(ks))
	for i, k := range ks {
		items[i] = keyOut(k)
	}
	return writeJSON(w, http.StatusOK, page{Items: items})
}

func (a *API) rotateKey(w http.ResponseWriter, r *http.Request) error {
	b, err := readObject(w, r)
	if err != nil {
		return err
	}
	alg := b.str("alg")
	if _, given := b.m["alg"]; !given {
		b.bad("alg", "is required: ES256, EdDSA, RS256 or RS512")
	}
	var prepublish time.Duration
	if v := b.seconds("prepublish"); v != nil {
		prepublish = *v
	}
	if errs := b.done(); len(errs) > 0 {
		return tokend.Invalid(errs)
	}
	k, err := a.Manager.RotateKey(r.Context(), *alg, prepublish)
	if err != nil {
		return err
	}
	out := keyOut(k)
	w.Header().Set("ETag", keyTag(out))
	return writeJSON(w, http.StatusCreated, out)
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r)
	limit := q.limit()
	aq := tokend.AuditQuery{Subject: q.get("subject"), Event: q.get("event"), ClientID: q.get("client_id"), Limit: limit + 1}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &aq.Since}, {"until", &aq.Until}} {
		if v := q.get(t.name); v != "" {
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				q.bad(t.name, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
			}
			*t.dst = at
		}
	}
	if c := q.cursor("audit"); c != "" {
		seq, err := strconv.ParseInt(c, 10, 64)
		if err != nil || seq <= 0 {
			q.bad("cursor", "not a cursor of this list: pass next_cursor as it came")
		}
		aq.Cursor = seq
	}
	if err := q.err(); err != nil {
		return err
	}
	events, err := a.Manager.Audit(r.Context(), aq)
	if err != nil {
		return err
	}
	events, next := trim(events, limit, func(e tokend.AuditEvent) string { return strconv.FormatInt(e.Seq, 10) })
	items := make([]auditJSON, len(events))
	for i, e := range events {
		items[i] = auditOut(e)
	}
	return writeJSON(w, http.StatusOK, pageOf(items, "audit", next))
}
