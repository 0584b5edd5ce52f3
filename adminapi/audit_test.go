package adminapi_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

func TestAudit(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		start := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
		uid := e.createUser(`{"username": "root", "password": "pw-of-root", "roles": ["tokend.admin"]}`)
		r := e.must(201, "POST", "/admin/v1/clients", `{"name": "billing"}`)
		cid, sec := r.str("id"), r.str("client_secret")
		e.must(204, "PUT", "/admin/v1/users/"+uid+"/password", `{"password": "pw-2-of-root"}`)
		// A write by a user's token names the user.
		userTok := e.login("root", "pw-2-of-root", grant.ScopeAdmin).str("access_token")
		if r := e.do("PATCH", "/admin/v1/clients/"+cid, userTok, `{"disabled": true}`, nil); r.status != 200 {
			t.Fatalf("PATCH with the user's token: %d %s", r.status, r.body)
		}

		all := e.must(200, "GET", "/admin/v1/audit?limit=1000&since="+start, "")
		for _, leak := range []string{sec, "pw-of-root", "pw-2-of-root", "$argon2id"} {
			if strings.Contains(string(all.body), leak) {
				t.Fatalf("the audit trail shows a secret: %s", all.body)
			}
		}
		var mine []map[string]any
		for _, ev := range all.items() {
			if ev["dialect"] == "admin" {
				mine = append(mine, ev)
			}
		}
		want := []struct{ event, subject, actor string }{
			{"client.disabled", cid, "user:" + uid},
			{"user.password_changed", uid, "client:" + e.adminClient},
			{"client.created", cid, "client:" + e.adminClient},
			{"user.created", uid, "client:" + e.adminClient},
		}
		if len(mine) != len(want) {
			t.Fatalf("admin events %v, want %v", mine, want)
		}
		for i, w := range want {
			ev := mine[i]
			if ev["event"] != w.event || ev["subject"] != w.subject || ev["actor"] != w.actor || ev["outcome"] != "success" || ev["ip"] != "127.0.0.1" {
				t.Errorf("event %d = %v, want %+v", i, ev, w)
			}
			if _, err := time.Parse(time.RFC3339, ev["at"].(string)); err != nil || ev["seq"].(float64) <= 0 {
				t.Errorf("event %d: at %v seq %v", i, ev["at"], ev["seq"])
			}
		}

		for _, tc := range []struct {
			query string
			want  int
		}{
			{"event=user.created", 1},
			{"subject=" + uid, 2},
			{"client_id=" + cid + "&event=client.created", 1},
			{"since=2999-01-01T00:00:00Z", 0},
			{"until=2000-01-01T00:00:00Z", 0},
			{"event=nothing.happened", 0},
		} {
			if got := e.must(200, "GET", "/admin/v1/audit?"+tc.query, "").items(); len(got) != tc.want {
				t.Errorf("?%s: %d events, want %d: %v", tc.query, len(got), tc.want, got)
			}
		}

		// Pages, newest first, and an insert during the walk goes to
		// the front, never into a later page.
		var seqs []float64
		cursor := ""
		for i := 0; ; i++ {
			r := e.must(200, "GET", "/admin/v1/audit?limit=2&cursor="+url.QueryEscape(cursor), "")
			for _, ev := range r.items() {
				seqs = append(seqs, ev["seq"].(float64))
			}
			if i == 0 {
				e.createUser(`{"username": "during-the-walk"}`)
			}
			if cursor = r.str("next_cursor"); cursor == "" {
				break
			}
		}
		for i := 1; i < len(seqs); i++ {
			if seqs[i] >= seqs[i-1] {
				t.Fatalf("seqs not strictly decreasing: %v", seqs)
			}
		}
		if len(seqs) != len(all.items()) {
			t.Errorf("the walk saw %d events, the start had %d", len(seqs), len(all.items()))
		}
	})
}
