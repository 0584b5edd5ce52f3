package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

// session adds a live session of userID to the fixture's store.
func (f *fixture) session(userID string) string {
	f.t.Helper()
	now := time.Now()
	s := &tokend.Session{ID: uuid.Must(uuid.NewV7()).String(), UserID: userID, Dialect: "oauth", Scope: "profile",
		RotatedAt: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := f.store().CreateSession(context.Background(), s); err != nil {
		f.t.Fatal(err)
	}
	return s.ID
}

func (f *fixture) lastEvent() map[string]any {
	f.t.Helper()
	events := decodeOne[[]map[string]any](f.t, f.must("", "audit", "list", "--json"))
	if len(events) == 0 {
		f.t.Fatal("no audit event")
	}
	return events[len(events)-1]
}

func TestUserEnableDelete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addUser("alice", "pw")
	f.addUser("bob", "pw")
	alice := f.user("alice")
	f.must("", "user", "disable", "alice")
	out := f.must("", "user", "enable", "alice")
	if !strings.Contains(out, "enabled user alice") || f.user("alice").Disabled {
		t.Fatalf("enable: %q, disabled %v", out, f.user("alice").Disabled)
	}
	if e := f.lastEvent(); e["event"] != "user.enabled" || e["subject"] != alice.ID || e["actor"] != "cli" {
		t.Errorf("event %v", e)
	}

	sid := f.session(alice.ID)
	out = f.must("", "user", "delete", alice.ID) // by id works too
	if !strings.Contains(out, "deleted user alice") {
		t.Errorf("output %q", out)
	}
	if _, err := f.store().UserByID(ctx, alice.ID); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Errorf("alice is still there: %v", err)
	}
	if _, err := f.store().SessionByID(ctx, sid); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Errorf("alice's session is still there: %v", err)
	}
	if f.user("bob").Disabled {
		t.Error("bob was touched")
	}
	if e := f.lastEvent(); e["event"] != "user.deleted" || e["subject"] != alice.ID {
		t.Errorf("event %v", e)
	}
	for _, cmd := range []string{"enable", "delete"} {
		_, _, err := f.run("", "user", cmd, "ghost")
		wantCode(t, err, tokend.ENOTFOUND)
		if !strings.Contains(describe(err), "ghost") {
			t.Errorf("user %s ghost: %q does not name the user", cmd, describe(err))
		}
		_, _, err = f.run("", "user", cmd)
		wantUsageError(t, err)
	}
}

func TestUserSet(t *testing.T) {
	f := newFixture(t)
	f.addUser("alice", "pw", "--role", "ops")
	f.must("", "user", "set", "alice", "--role", "tokend.admin", "--role", "billing", "--claim", "dept=ops", "--claim-json", `level=3`, "--claim-json", `tags=["a","b"]`)
	u := f.user("alice")
	claims, _ := json.Marshal(u.Claims)
	if !slices.Equal(u.Roles, []string{"tokend.admin", "billing"}) || string(claims) != `{"dept":"ops","level":3,"tags":["a","b"]}` {
		t.Fatalf("roles %v claims %s", u.Roles, claims)
	}
	if e := f.lastEvent(); e["event"] != "user.updated" || e["actor"] != "cli" || !strings.Contains(e["detail"].(string), "roles,claims") {
		t.Errorf("event %v", e)
	}
	// The claim flags change only the claims they name.
	out := f.must("", "user", "set", "alice", "--claim", "site=paris", "--unset-claim", "tags")
	u = f.user("alice")
	claims, _ = json.Marshal(u.Claims)
	if string(claims) != `{"dept":"ops","level":3,"site":"paris"}` || !slices.Equal(u.Roles, []string{"tokend.admin", "billing"}) {
		t.Fatalf("roles %v claims %s", u.Roles, claims)
	}
	if !strings.Contains(out, `"site":"paris"`) {
		t.Errorf("output %q", out)
	}
	f.must("", "user", "set", "alice", "--clear-claims", "--clear-roles")
	if u = f.user("alice"); len(u.Roles) != 0 || len(u.Claims) != 0 {
		t.Fatalf("after clearing: roles %v claims %v", u.Roles, u.Claims)
	}

	before := f.user("alice")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing to set", nil, "needs"},
		{"reserved claim", []string{"--claim", "iss=evil"}, `"iss"`},
		{"reserved claim as JSON", []string{"--claim-json", `sub="x"`}, `"sub"`},
		{"not JSON", []string{"--claim-json", "level=three"}, "JSON"},
		{"no equals", []string{"--claim", "dept"}, "NAME=VALUE"},
		{"role with a space", []string{"--role", "a b"}, "--role"},
		{"role and clear", []string{"--role", "a", "--clear-roles"}, "--clear-roles"},
		{"claims too large", []string{"--claim", "blob=" + strings.Repeat("x", 5000)}, "--claim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.run("", append([]string{"user", "set", "alice"}, tc.args...)...)
			if ue := wantUsageError(t, err); !strings.Contains(ue.msg, tc.want) {
				t.Errorf("message %q, want it to contain %q", ue.msg, tc.want)
			}
		})
	}
	if after := f.user("alice"); after.Version != before.Version {
		t.Error("a refused user set changed the user")
	}
	_, _, err := f.run("", "user", "set", "ghost", "--role", "x")
	wantCode(t, err, tokend.ENOTFOUND)
}

func TestClientEnableDelete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, _ := f.addClient("billing")
	f.must("", "client", "disable", id)
	if out := f.must("", "client", "enable", id); !strings.Contains(out, "enabled client "+id) || f.client(id).Disabled {
		t.Fatalf("enable: %q", out)
	}
	if e := f.lastEvent(); e["event"] != "client.enabled" || e["subject"] != id || e["actor"] != "cli" {
		t.Errorf("event %v", e)
	}
	endUser := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: "end-1", ClientID: id, CreatedAt: time.Now()}
	if err := f.store().CreateUser(ctx, endUser); err != nil {
		t.Fatal(err)
	}
	f.must("", "client", "delete", id)
	if _, err := f.store().ClientByID(ctx, id); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Errorf("the client is still there: %v", err)
	}
	if _, err := f.store().UserByID(ctx, endUser.ID); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Errorf("its end user is still there: %v", err)
	}
	for _, cmd := range []string{"enable", "delete", "disable"} {
		_, _, err := f.run("", "client", cmd, id)
		wantCode(t, err, tokend.ENOTFOUND)
		if !strings.Contains(describe(err), id) {
			t.Errorf("client %s: %q does not name the client", cmd, describe(err))
		}
	}
}

func TestSessionListRevoke(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if got := decodeOne[[]any](t, f.must("", "session", "list", "--json")); len(got) != 0 {
		t.Fatalf("fresh store lists %v", got)
	}
	f.addUser("alice", "pw")
	f.addUser("bob", "pw")
	a1, a2 := f.session(f.user("alice").ID), f.session(f.user("alice").ID)
	b1 := f.session(f.user("bob").ID)
	ids := func(args ...string) []string {
		t.Helper()
		var out []string
		for _, s := range decodeOne[[]map[string]any](t, f.must("", append([]string{"session", "list", "--json"}, args...)...)) {
			out = append(out, s["id"].(string))
			if s["client_id"] != nil || s["dialect"] != "oauth" || s["expires_at"] == nil {
				t.Errorf("session %v", s)
			}
		}
		return out
	}
	if got := ids(); !slices.Equal(got, []string{a1, a2, b1}) {
		t.Errorf("all sessions %v", got)
	}
	if got := ids("--user", "alice"); !slices.Equal(got, []string{a1, a2}) {
		t.Errorf("alice's sessions %v", got)
	}
	if out := f.must("", "session", "list"); !strings.Contains(out, "DIALECT") || !strings.Contains(out, b1) {
		t.Errorf("text output %q", out)
	}
	if out := f.must("", "session", "revoke", a1); !strings.Contains(out, a1) {
		t.Errorf("output %q", out)
	}
	if s, err := f.store().SessionByID(ctx, a1); err != nil || s.RevokedAt.IsZero() {
		t.Errorf("session after revoke: %+v %v", s, err)
	}
	if got := ids(); !slices.Equal(got, []string{a2, b1}) {
		t.Errorf("live sessions after revoke %v", got)
	}
	if e := f.lastEvent(); e["event"] != "session.revoked" || e["actor"] != "cli" || e["subject"] != f.user("alice").ID {
		t.Errorf("event %v", e)
	}
	_, _, err := f.run("", "session", "revoke", uuid.NewString())
	wantCode(t, err, tokend.ENOTFOUND)
	_, _, err = f.run("", "session", "list", "--user", "ghost")
	wantCode(t, err, tokend.ENOTFOUND)
	_, _, err = f.run("", "session", "revoke")
	wantUsageError(t, err)
	_, _, err = runCLI(t, "", "session")
	wantUsageError(t, err)
}
