package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

type auditView struct {
	Items []tokend.AuditEvent
	Next  string
	First bool
}

// timeField reads a time typed in a datetime-local field, as UTC.
func timeField(name, s string) (time.Time, []tokend.FieldError) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05", time.RFC3339, "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, []tokend.FieldError{{Field: name, Detail: "must be a date and time (UTC), such as 2025-01-31T14:30"}}
}

// audit lists the audit trail, newest first, filtered by time, subject,
// event and client app, a page at a time; each event opens to its details.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *signin) error {
	q := r.URL.Query()
	v := s.view("Audit trail", "audit")
	v.Form = map[string]string{}
	for _, k := range []string{"since", "until", "subject", "event", "client"} {
		v.Form[k] = q.Get(k)
	}
	since, e1 := timeField("since", q.Get("since"))
	until, e2 := timeField("until", q.Get("until"))
	aq := tokend.AuditQuery{Since: since, Until: until, Subject: strings.TrimSpace(q.Get("subject")),
		Event: strings.TrimSpace(q.Get("event")), ClientID: strings.TrimSpace(q.Get("client")), Limit: pageSize}
	if cur := q.Get("cursor"); cur != "" {
		n, err := strconv.ParseInt(cur, 10, 64)
		if err != nil || n < 0 {
			e2 = append(e2, tokend.FieldError{Field: "cursor", Detail: "must be a page cursor from a Next link"})
		}
		aq.Cursor = n
	}
	err := tokend.Invalid(append(e1, e2...))
	var items []tokend.AuditEvent
	if err == nil {
		items, err = c.mgr.Audit(r.Context(), aq)
	}
	if err != nil {
		if !v.setFieldErrors(err) {
			return err
		}
		v.Data = auditView{First: true}
		c.render(w, http.StatusBadRequest, "audit", v)
		return nil
	}
	d := auditView{Items: items, First: aq.Cursor == 0}
	if len(items) == pageSize {
		next := url.Values{}
		for k, val := range v.Form {
			if val != "" {
				next.Set(k, val)
			}
		}
		next.Set("cursor", strconv.FormatInt(items[len(items)-1].Seq, 10))
		d.Next = Prefix + "audit?" + next.Encode()
	}
	v.Data = d
	c.render(w, http.StatusOK, "audit", v)
	return nil
}
