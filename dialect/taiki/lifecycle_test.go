package taiki_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/taiki"
	"github.com/tokend/tokend/grant"
)

// decodePayload reads a JWT's claims without verifying it.
func decodePayload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestModes(t *testing.T) {
	type call struct {
		host, path, app string // app: "prod" or "sandbox"
		status          int
	}
	cases := []struct {
		name  string
		cfg   taiki.Config
		calls []call
	}{
		{"nothing configured: both modes at /api/token", taiki.DefaultConfig, []call{
			{"", "/api/token", "prod", 200},
			{"", "/api/token", "sandbox", 200},
			{"sandbox.taiki.test", "/api/token", "prod", 200},
			{"", "/sandbox/api/token", "sandbox", 404},
		}},
		{"sandbox prefix", taiki.Config{TTL: time.Hour, SandboxPrefix: "/sandbox"}, []call{
			{"", "/sandbox/api/token", "sandbox", 200},
			{"", "/sandbox/api/token/", "sandbox", 200},
			{"", "/sandbox/api/token", "prod", 401},
			{"", "/sandbox/api/token/", "prod", 401},
			{"", "/api/token", "prod", 200},
			{"", "/api/token", "sandbox", 401}, // the bare path is production's
			{"", "/api/token/", "sandbox", 401},
		}},
		{"production prefix", taiki.Config{TTL: time.Hour, ProductionPrefix: "/live"}, []call{
			{"", "/live/api/token", "prod", 200},
			{"", "/live/api/token", "sandbox", 401},
			{"", "/api/token", "sandbox", 200},
			{"", "/api/token", "prod", 401}, // the bare path is sandbox's
		}},
		{"prefixes for both modes, written loosely", taiki.Config{TTL: time.Hour, SandboxPrefix: "sandbox/", ProductionPrefix: "/v1/live/"}, []call{
			{"", "/sandbox/api/token", "sandbox", 200},
			{"", "/sandbox/api/token", "prod", 401},
			{"", "/v1/live/api/token", "prod", 200},
			{"", "/v1/live/api/token/", "sandbox", 401},
			{"", "/api/token", "sandbox", 200}, // the bare path belongs to neither
			{"", "/api/token", "prod", 200},
		}},
		{"one prefix for both modes tells nothing", taiki.Config{TTL: time.Hour, SandboxPrefix: "/t", ProductionPrefix: "/t"}, []call{
			{"", "/t/api/token", "sandbox", 200},
			{"", "/t/api/token", "prod", 200},
			{"", "/api/token", "prod", 200},
		}},
		{"sandbox host", taiki.Config{TTL: time.Hour, SandboxHost: "sandbox.taiki.test"}, []call{
			{"sandbox.taiki.test", "/api/token", "sandbox", 200},
			{"sandbox.taiki.test", "/api/token", "prod", 401},
			{"", "/api/token", "prod", 200},
			{"", "/api/token", "sandbox", 401}, // every other host is production's
		}},
		{"hosts", taiki.Config{TTL: time.Hour, SandboxHost: "sandbox.taiki.test", ProductionHost: "api.taiki.test"}, []call{
			{"sandbox.taiki.test", "/api/token", "sandbox", 200},
			{"sandbox.taiki.test:8443", "/api/token/", "sandbox", 200},
			{"SANDBOX.taiki.test", "/api/token", "sandbox", 200},
			{"sandbox.taiki.test", "/api/token", "prod", 401},
			{"sandbox.taiki.test:443", "/api/token", "prod", 401},
			{"api.taiki.test", "/api/token", "prod", 200},
			{"api.taiki.test", "/api/token", "sandbox", 401},
			{"", "/api/token", "sandbox", 200}, // a third host belongs to neither
			{"", "/api/token", "prod", 200},
		}},
		{"host and prefix disagree", taiki.Config{TTL: time.Hour, SandboxPrefix: "/sandbox", ProductionHost: "api.taiki.test"}, []call{
			{"api.taiki.test", "/sandbox/api/token", "sandbox", 401},
			{"api.taiki.test", "/sandbox/api/token", "prod", 401},
			{"api.taiki.test", "/api/token", "prod", 200},
			{"api.taiki.test", "/api/token", "sandbox", 401},
			{"", "/sandbox/api/token", "sandbox", 200},
			{"", "/sandbox/api/token", "prod", 401},
			{"", "/api/token", "sandbox", 401}, // path: production; host: sandbox
			{"", "/api/token", "prod", 401},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outer := newEnv(t, c.cfg)
			for _, k := range c.calls {
				host, label := k.host, k.host
				if host == "" {
					host, label = strings.TrimPrefix(outer.Srv.URL, "http://"), "default host"
				}
				t.Run(k.app+" app at "+label+" "+k.path, func(t *testing.T) {
					e := outer.in(t)
					id, sec, mode := e.prodID, e.prodSecret, tokend.ModeProduction
					if k.app == "sandbox" {
						id, sec, mode = e.sandboxID, e.sandboxSecret, tokend.ModeSandbox
					}
					r := e.postHost(host, k.path, body("api_key", id, "api_secret", sec))
					switch k.status {
					case 200:
						tok, uid := wantToken(t, r)
						e.checkClaims(tok, id, uid, mode, time.Hour)
					case 401:
						wantError(t, r, 401, incorrectBody)
					default:
						if r.Status != k.status {
							t.Fatalf("status %d %s, want %d", r.Status, r.Body, k.status)
						}
					}
				})
			}
		})
	}
	t.Run("prefixed path answers other methods with 405", func(t *testing.T) {
		e := newEnv(t, taiki.Config{TTL: time.Hour, SandboxPrefix: "/sandbox"})
		r := e.Do("GET", "/sandbox/api/token", "", "")
		wantError(t, r, 405, methodBody)
		if r.Header.Get("Allow") != "POST" {
			t.Fatalf("Allow %q", r.Header.Get("Allow"))
		}
	})
	t.Run("a user of a sandbox app stays in sandbox", func(t *testing.T) {
		e := newEnv(t, taiki.Config{TTL: time.Hour, SandboxPrefix: "/sandbox"})
		_, uid := wantToken(t, e.post("/sandbox/api/token", body("api_key", e.sandboxID, "api_secret", e.sandboxSecret)))
		wantError(t, e.post("/sandbox/api/token", body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", uid)), 401, incorrectBody)
		tok, again := wantToken(t, e.post("/sandbox/api/token", body("api_key", e.sandboxID, "api_secret", e.sandboxSecret, "taiki_user_id", uid)))
		if again != uid {
			t.Fatalf("user %s, want %s", again, uid)
		}
		e.checkClaims(tok, e.sandboxID, uid, tokend.ModeSandbox, time.Hour)
	})
	for _, bad := range []string{"/sand box", "/{x}", "/a//b", "/../x", "/x?y"} {
		t.Run("invalid prefix "+bad, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("prefix %q was accepted", bad)
				}
			}()
			taiki.New(nil, taiki.Config{SandboxPrefix: bad}).Register(http.NewServeMux())
		})
	}
}

func TestSecretRotation(t *testing.T) {
	ctx := context.Background()
	t.Run("without overlap the old secret stops at once", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, uid := e.issue("")
		newSecret, err := grant.RotateClientSecret(ctx, e.Store, e.prodID, 0, e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.sync()
		wantError(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", uid)), 401, incorrectBody)
		_, again := wantToken(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", newSecret, "taiki_user_id", uid)))
		if again != uid {
			t.Fatalf("user %s, want %s", again, uid)
		}
		e.prodSecret = newSecret // introspect as the app with its new secret
		e.wantActive(tok, true)
	})
	t.Run("with overlap the old secret works until it ends", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, _ := e.issue("")
		newSecret, err := grant.RotateClientSecret(ctx, e.Store, e.prodID, 30*time.Minute, e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.sync()
		old := body("api_key", e.prodID, "api_secret", e.prodSecret)
		wantToken(t, e.post("/api/token", old))
		wantToken(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", newSecret)))
		e.Clock.Advance(31 * time.Minute)
		wantError(t, e.post("/api/token", old), 401, incorrectBody)
		wantToken(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", newSecret)))
		e.prodSecret = newSecret
		e.wantActive(tok, true)
	})
}

func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	t.Run("expires after one hour", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, _ := e.issue("")
		e.Clock.Advance(59 * time.Minute)
		e.wantActive(tok, true)
		e.Clock.Advance(time.Minute)
		e.wantActive(tok, false)
	})
	t.Run("revoked by its own app", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, uid := e.issue("")
		otherID, otherSecret := e.AddClient(false, tokend.ModeProduction, nil, tokend.GrantClientCredentials)
		r := e.form("/oauth2/revoke", otherID, otherSecret, "token", tok)
		if r.Status != 400 || r.Str(t, "error") != "unauthorized_client" {
			t.Fatalf("another app revoked: %d %s", r.Status, r.Body)
		}
		e.wantActive(tok, true)
		if r := e.form("/oauth2/revoke", e.prodID, e.prodSecret, "token", tok); r.Status != 200 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		e.wantActive(tok, false)
		// The user can still get a fresh token.
		fresh, _ := e.issue(uid)
		e.wantActive(fresh, true)
	})
	t.Run("a disabled app", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, uid := e.issue("")
		introspector, isec := e.AddClient(false, tokend.ModeProduction, nil, tokend.GrantClientCredentials)
		if err := e.Store.DisableClient(ctx, e.prodID); err != nil {
			t.Fatal(err)
		}
		e.sync()
		wantError(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", uid)), 401, incorrectBody)
		if m := e.form("/oauth2/introspect", introspector, isec, "token", tok).JSON(t); m["active"] != false {
			t.Fatalf("token of a disabled app: %v", m)
		}
	})
	t.Run("a disabled user", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		tok, uid := e.issue("")
		if err := e.Store.DisableUser(ctx, uid, e.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.sync()
		wantError(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", e.prodSecret, "taiki_user_id", uid)), 401, incorrectBody)
		e.wantActive(tok, false)
		wantToken(t, e.post("/api/token", body("api_key", e.prodID, "api_secret", e.prodSecret)))
	})
	t.Run("an end user cannot log in with a password", func(t *testing.T) {
		e := newEnv(t, taiki.DefaultConfig)
		pwID, pwSecret := e.AddClient(false, tokend.ModeProduction, nil, tokend.GrantPassword)
		_, uid := e.issue("")
		for _, pw := range []string{uid, "x"} {
			r := e.form("/oauth2/token", pwID, pwSecret, "grant_type", "password", "username", uid, "password", pw)
			if r.Status != 400 || r.Str(t, "error") != "invalid_grant" {
				t.Fatalf("end user logged in: %d %s", r.Status, r.Body)
			}
		}
	})
}

func TestEndUsers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, taiki.DefaultConfig)
	_, a := e.issue("")
	_, b := e.issue("")
	e.issue(a) // an existing user is not created again
	_, s := wantToken(t, e.post("/api/token", body("api_key", e.sandboxID, "api_secret", e.sandboxSecret)))
	ids := func(client string) []string {
		t.Helper()
		users, err := e.Store.ListUsers(ctx, tokend.UserFilter{ClientID: client})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, u := range users {
			if u.ClientID != client {
				t.Fatalf("user %s belongs to %s", u.ID, u.ClientID)
			}
			out = append(out, u.ID)
		}
		slices.Sort(out)
		return out
	}
	want := []string{a, b}
	slices.Sort(want)
	if got := ids(e.prodID); !slices.Equal(got, want) {
		t.Fatalf("production app's users %v, want %v", got, want)
	}
	if got := ids(e.sandboxID); !slices.Equal(got, []string{s}) {
		t.Fatalf("sandbox app's users %v, want %v", got, []string{s})
	}
	if got := ids(""); slices.Contains(got, a) || slices.Contains(got, s) {
		t.Fatalf("end users listed among the password users: %v", got)
	}
}
