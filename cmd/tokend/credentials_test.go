package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

// sendJSON posts a JSON body to the server, with an optional Authorization
// header.
func (s *server) sendJSON(path, body, auth string) httpResult {
	req, _ := http.NewRequest("POST", "http://"+s.addr+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(req)
}

// getAuth sends GET with an Authorization header.
func (s *server) getAuth(path, auth string) httpResult {
	req, _ := http.NewRequest("GET", "http://"+s.addr+path, nil)
	req.Header.Set("Authorization", auth)
	return do(req)
}

func basicAuth(user, pw string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pw)
	return req.Header.Get("Authorization")
}

// aliceTokens are the tokens of one login of alice at every front end.
type aliceTokens struct {
	oauthAccess, oauthRefresh string
	sjAccess, sjRefresh       string
	ocmAccess, ocmRefresh     string
	atoti                     string
}

func loginEverywhere(t *testing.T, s *server, f nodeFixture, pw string) aliceTokens {
	t.Helper()
	var a aliceTokens
	r := s.post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {pw}, "client_id": {f.publicID}}, "", "")
	if r.status != 200 {
		t.Fatalf("oauth login: %d %v %v", r.status, r.body, r.err)
	}
	a.oauthAccess, a.oauthRefresh = r.str("access_token"), r.str("refresh_token")
	r = s.sendJSON("/api/v1/token/", `{"username": "alice", "password": "`+pw+`"}`, "")
	if r.status != 200 {
		t.Fatalf("simplejwt login: %d %v %v", r.status, r.body, r.err)
	}
	a.sjAccess, a.sjRefresh = r.str("access"), r.str("refresh")
	r = s.sendJSON("/system/api/v1/security/token", `{}`, basicAuth("alice", pw))
	if r.status != 200 {
		t.Fatalf("ocm login: %d %v %v", r.status, r.body, r.err)
	}
	a.ocmAccess, a.ocmRefresh = r.str("accessToken"), r.str("refreshToken")
	r = s.getAuth("/activeviam/jwt/rest/v3/token", basicAuth("alice", pw))
	if r.status != 200 {
		t.Fatalf("atoti login: %d %v %v", r.status, r.body, r.err)
	}
	a.atoti = r.str("token")
	return a
}

// TestUserPasswdEndsSessions changes a password with the CLI while a
// server runs, and checks from outside that every session of the user
// ended and every token issued before the change stopped passing, at the
// OAuth endpoints and at each dialect, while another user's tokens and a
// login right after the change work; --keep-sessions keeps them all.
func TestUserPasswdEndsSessions(t *testing.T) {
	hermeticEnv(t)
	s := startServer(t, t.TempDir(), "--dialects", "atoti,simplejwt,ocm", "--rate-limit", "off")
	f := provision(t, s)
	s.cli(t, "pw-of-bob\n", "user", "add", "bob", "--password-stdin", "--argon2-memory", "1024", "--argon2-time", "1")

	introspect := func(tok string) bool {
		t.Helper()
		r := s.post("/oauth2/introspect", url.Values{"token": {tok}}, f.clientID, f.clientSecret)
		if r.status != 200 {
			t.Fatalf("introspect: %d %v %v", r.status, r.body, r.err)
		}
		return r.body["active"] == true
	}
	// passes lists what still accepts each of alice's tokens.
	// OAuth refresh tokens rotate: a successful refresh moves a on.
	passes := func(a *aliceTokens) []string {
		t.Helper()
		var got []string
		for name, tok := range map[string]string{
			// (The OAuth refresh token is the public client's: only it may introspect it.)
			"oauth access": a.oauthAccess, "simplejwt access": a.sjAccess,
			"simplejwt refresh": a.sjRefresh, "ocm access": a.ocmAccess, "ocm refresh": a.ocmRefresh, "atoti": a.atoti,
		} {
			if introspect(tok) {
				got = append(got, "introspection of "+name)
			}
		}
		if s.getAuth("/userinfo", "Bearer "+a.oauthAccess).status == 200 {
			got = append(got, "userinfo (oauth)")
		}
		if s.getAuth("/userinfo", "Bearer "+a.atoti).status == 200 {
			got = append(got, "userinfo (atoti)")
		}
		if s.getAuth("/activeviam/jwt/rest/v3/token", "Bearer "+a.atoti).status == 200 {
			got = append(got, "atoti echo")
		}
		if s.sendJSON("/api/v1/token/verify/", `{"token": "`+a.sjAccess+`"}`, "").status == 200 {
			got = append(got, "simplejwt verify (access)")
		}
		if s.sendJSON("/api/v1/token/verify/", `{"token": "`+a.sjRefresh+`"}`, "").status == 200 {
			got = append(got, "simplejwt verify (refresh)")
		}
		if r := s.refresh(a.oauthRefresh, f.publicID); r.status == 200 {
			got = append(got, "oauth refresh")
			a.oauthRefresh = r.str("refresh_token")
		}
		if s.sendJSON("/api/v1/token/refresh/", `{"refresh": "`+a.sjRefresh+`"}`, "").status == 200 {
			got = append(got, "simplejwt refresh")
		}
		if s.sendJSON("/system/api/v1/security/token", `{"refreshToken": "`+a.ocmRefresh+`"}`, "").status == 200 {
			got = append(got, "ocm refresh")
		}
		return got
	}
	const everything = 14
	before := loginEverywhere(t, s, f, "pw-of-alice")
	if got := passes(&before); len(got) != everything {
		t.Fatalf("before the change only %d checks pass: %v", len(got), got)
	}
	bob := s.post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"pw-of-bob"}, "client_id": {f.publicID}}, "", "")
	if bob.status != 200 {
		t.Fatalf("bob's login: %d %v", bob.status, bob.body)
	}

	out := s.cli(t, "new-pw-of-alice\n", "user", "passwd", "alice", "--password-stdin", "--argon2-memory", "1024", "--argon2-time", "1")
	if !strings.Contains(out, "sessions are ended") {
		t.Errorf("passwd output %q does not say the sessions ended", out)
	}
	// A login right after the change, likely within the same second.
	after := loginEverywhere(t, s, f, "new-pw-of-alice")

	var left []string
	eventually(t, "the end of alice's sessions", 3*time.Second, func() bool {
		left = passes(&before)
		return len(left) == 0
	})
	if got := passes(&after); len(got) != everything {
		t.Errorf("the tokens of a login right after the change fail some checks; passing: %v", got)
	}
	if !introspect(bob.str("access_token")) || s.refresh(bob.str("refresh_token"), f.publicID).status != 200 {
		t.Error("bob's tokens were touched")
	}
	if r := s.post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"pw-of-alice"}, "client_id": {f.publicID}}, "", ""); r.status != 400 {
		t.Errorf("the old password still logs in: %d", r.status)
	}

	t.Run("keep sessions", func(t *testing.T) {
		out := s.cli(t, "third-pw\n", "user", "passwd", "alice", "--password-stdin", "--keep-sessions", "--argon2-memory", "1024", "--argon2-time", "1")
		if !strings.Contains(out, "kept") {
			t.Errorf("passwd output %q does not say the sessions are kept", out)
		}
		time.Sleep(time.Second) // the server has seen the change (sync every 250ms)
		if got := passes(&after); len(got) != everything {
			t.Errorf("--keep-sessions ended something; passing: %v", got)
		}
	})

	t.Run("audit", func(t *testing.T) {
		var u []map[string]any
		json.Unmarshal([]byte(s.cli(t, "", "user", "list", "--json")), &u)
		var aliceID string
		for _, m := range u {
			if m["username"] == "alice" {
				aliceID, _ = m["id"].(string)
			}
		}
		var events []map[string]any
		if err := json.Unmarshal([]byte(s.cli(t, "", "audit", "list", "--json", "--subject", aliceID)), &events); err != nil {
			t.Fatal(err)
		}
		var details []string
		for _, e := range events {
			if e["event"] == "user.password_changed" {
				details = append(details, e["detail"].(string)+" "+e["dialect"].(string))
			}
		}
		if strings.Join(details, ",") != "sessions=ended cli,sessions=kept cli" {
			t.Errorf("password change events %v", details)
		}
	})
}

// A name with the shape of a user id could be taken for another user's id
// (Atoti tokens carry the username where others carry the id): `user add`
// refuses every spelling of a UUID, and nothing is stored.
func TestUserAddRefusesUUIDNames(t *testing.T) {
	f := newFixture(t)
	id := uuid.Must(uuid.NewV7())
	for _, name := range []string{
		id.String(), strings.ToUpper(id.String()), "{" + id.String() + "}", "urn:uuid:" + id.String(),
		strings.ReplaceAll(id.String(), "-", ""),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := f.run("pw\n", append([]string{"user", "add", name, "--password-stdin"}, cheapArgon...)...)
			if ue := wantUsageError(t, err); !strings.Contains(ue.msg, "UUID") {
				t.Errorf("message %q does not say why", ue.msg)
			}
		})
	}
	// Near misses are ordinary names.
	f.addUser(id.String()[:35], "pw")
	f.addUser("alice-"+id.String(), "pw")
	users, err := f.store().ListUsers(t.Context(), tokend.UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 {
		t.Errorf("%d users stored, want the 2 near misses", len(users))
	}
}

// An access TTL longer than its session's would outlive it: serve refuses
// it at start-up, naming both flags, before touching the store.
func TestServeRefusesAccessOutlivingSession(t *testing.T) {
	hermeticEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"oauth", []string{"--access-ttl", "1h", "--refresh-ttl", "15s"}, []string{"--access-ttl 1h0m0s", "--refresh-ttl 15s"}},
		{"simplejwt", []string{"--simplejwt-access-ttl", "745h", "--simplejwt-refresh-ttl", "720h"}, []string{"--simplejwt-access-ttl", "--simplejwt-refresh-ttl"}},
		{"ocm", []string{"--ocm-access-ttl", "2h", "--ocm-refresh-ttl", "1h"}, []string{"--ocm-access-ttl 2h0m0s", "--ocm-refresh-ttl 1h0m0s"}},
		{"refresh shorter than the default access", []string{"--refresh-ttl", "10m"}, []string{"--access-ttl 15m0s", "--refresh-ttl 10m0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := "sqlite:" + t.TempDir() + "/never-opened.db"
			// An unrelated bad flag as well: serve reports every problem at
			// once, and no server may start here should the check be missing.
			args := append([]string{"serve", "--db", db, "--log-format", "xml"}, tc.args...)
			_, _, err := runCLI(t, "", args...)
			ue := wantUsageError(t, err)
			for _, w := range tc.want {
				if !strings.Contains(ue.msg, w) {
					t.Errorf("message %q does not name %q", ue.msg, w)
				}
			}
		})
	}
}
