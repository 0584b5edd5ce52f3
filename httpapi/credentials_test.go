package httpapi_test

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/atoti"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/tokendtest"
)

// withAtoti serves the atoti dialect beside the OAuth endpoints: its
// tokens belong to no session and carry the username in sub.
func withAtoti() envOption {
	return func(o *tokendtest.Options) {
		o.Config = func(c *grant.Config) { c.ExtraAlgs = []string{"RS512"} }
		o.Routes = func(e *tokendtest.Env) []httpapi.Routes {
			return []httpapi.Routes{atoti.New(e.Engine, atoti.DefaultConfig)}
		}
	}
}

func basicHeader(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// atotiLogin returns an Atoti token of user.
func (e *env) atotiLogin(user, pw string) string {
	e.t.Helper()
	r := e.do("GET", atoti.Path, "", "", "", "Authorization", basicHeader(user, pw))
	if r.Status != 200 {
		e.t.Fatalf("atoti login of %s: %d %s", user, r.Status, r.Body)
	}
	return r.Str(e.t, "token")
}

func (e *env) active(tok string) bool {
	e.t.Helper()
	return e.introspect(tok)["active"] == true
}

func (e *env) userinfo(tok string) response {
	e.t.Helper()
	return e.do("GET", "/userinfo", "", "", "", "Authorization", "Bearer "+tok)
}

// TestPasswordChangeEndsSessions changes alice's password through the
// engine (what the admin API calls) within the second her tokens were
// issued in, and checks over HTTP that her session and her session-less
// Atoti token stopped passing at once, while a login right after the
// change, in that same second, works.
func TestPasswordChangeEndsSessions(t *testing.T) {
	e := newEnv(t, withAtoti())
	ctx := context.Background()
	bobID := e.AddUser("bob", "bob's password")
	// Start 100ms into a second, so that the tokens, the change and the
	// next login fall (most likely) within one second of iat.
	e.Clock.Advance(time.Second - time.Duration(e.Clock.Now().Nanosecond()) + 100*time.Millisecond)

	login := e.login()
	at, rt := login.Str(t, "access_token"), login.Str(t, "refresh_token")
	atotiTok := e.atotiLogin("alice", alicePassword)
	bobTok := e.atotiLogin("bob", "bob's password")
	if !e.active(at) || !e.active(atotiTok) {
		t.Fatal("alice's tokens are inactive before the change")
	}

	m := e.Engine.Manager()
	if err := m.SetUserPassword(ctx, e.aliceID, "a new password", false); err != nil {
		t.Fatal(err)
	}

	t.Run("old tokens", func(t *testing.T) {
		for name, tok := range map[string]string{"oauth access": at, "atoti": atotiTok} {
			if e.active(tok) {
				t.Errorf("%s token still introspects active", name)
			}
			if r := e.userinfo(tok); r.Status != 401 {
				t.Errorf("%s token still passes /userinfo: %d", name, r.Status)
			}
		}
		if r := e.do("GET", atoti.Path, "", "", "", "Authorization", "Bearer "+atotiTok); r.Status != 401 {
			t.Errorf("the atoti echo still returns the old token: %d", r.Status)
		}
		wantOAuthError(t, e.refresh(rt), 400, "invalid_grant")
	})
	t.Run("other user", func(t *testing.T) {
		if !e.active(bobTok) {
			t.Error("bob's token turned inactive")
		}
	})
	t.Run("login right after", func(t *testing.T) {
		r := e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", "a new password", "client_id", e.publicID), "")
		if r.Status != 200 {
			t.Fatalf("login with the new password: %d %s", r.Status, r.Body)
		}
		at2, rt2 := r.Str(t, "access_token"), r.Str(t, "refresh_token")
		atoti2 := e.atotiLogin("alice", "a new password")
		for name, tok := range map[string]string{"oauth access": at2, "atoti": atoti2} {
			if !e.active(tok) {
				t.Errorf("%s token of a login after the change is inactive", name)
			}
			if r := e.userinfo(tok); r.Status != 200 {
				t.Errorf("%s token of a login after the change fails /userinfo: %d %s", name, r.Status, r.Body)
			}
			// Dated honestly: a verifier with no leeway accepts it.
			e.verifyWithJWKS(tok)
		}
		if r := e.refresh(rt2); r.Status != 200 {
			t.Errorf("refresh of a session after the change: %d %s", r.Status, r.Body)
		}
		wantOAuthError(t, e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword, "client_id", e.publicID), ""), 400, "invalid_grant")
	})
	t.Run("keep sessions", func(t *testing.T) {
		r := e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", "a new password", "client_id", e.publicID), "")
		at3, rt3 := r.Str(t, "access_token"), r.Str(t, "refresh_token")
		if err := m.SetUserPassword(ctx, e.aliceID, "a new password", true); err != nil {
			t.Fatal(err)
		}
		if !e.active(at3) || e.refresh(rt3).Status != 200 {
			t.Error("--keep-sessions ended the session")
		}
	})
	t.Run("audit", func(t *testing.T) {
		events, err := e.Store.ListAudit(ctx, tokend.AuditFilter{Subject: e.aliceID})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range events {
			if ev.Event == "user.password_changed" {
				got = append(got, ev.Detail)
			}
		}
		if len(got) != 2 || got[0] != "sessions=ended" || got[1] != "sessions=kept" {
			t.Errorf("password change events %v", got)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		if err := m.SetUserPassword(ctx, uuid.NewString(), "a new password", false); tokend.ErrorCode(err) != tokend.ENOTFOUND {
			t.Errorf("unknown user: %v", err)
		}
		if u, err := e.Store.UserByID(ctx, bobID); err != nil || !u.TokensNotBefore.IsZero() {
			t.Errorf("bob changed: %+v, %v", u, err)
		}
	})
}

// TestRevocationOutlivesSessionExpiry revokes a session whose last access
// token outlives it (refreshed a minute before the session ends), lets the
// session expire and the housekeeping run, restarts the server on the same
// store, and checks that the token is still inactive.
func TestRevocationOutlivesSessionExpiry(t *testing.T) {
	e := newEnv(t) // access tokens 15m, sessions 24h
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	login := e.login()
	e.Clock.Advance(24*time.Hour - time.Minute)
	r := e.refresh(login.Str(t, "refresh_token"))
	if r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	at, rt := r.Str(t, "access_token"), r.Str(t, "refresh_token")
	if r := e.post("/oauth2/revoke", vals("token", rt, "client_id", e.publicID), ""); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if e.active(at) {
		t.Fatal("the revoked session's token is active")
	}

	e.Clock.Advance(5 * time.Minute) // the session expired; the token has 9 minutes left
	// A session that expired unrevoked shows when the purge has run.
	expired := &tokend.Session{ID: uuid.Must(uuid.NewV7()).String(), UserID: e.aliceID, Dialect: grant.DialectOAuth,
		RotatedAt: e.Clock.Now().Add(-time.Hour), CreatedAt: e.Clock.Now().Add(-time.Hour), ExpiresAt: e.Clock.Now().Add(-time.Minute)}
	if err := e.Store.CreateSession(ctx, expired); err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	go e.Engine.Watch(watchCtx, 10*time.Millisecond, nil)
	within(t, "the purge", func() bool {
		_, err := e.Store.SessionByID(ctx, expired.ID)
		return tokend.ErrorCode(err) == tokend.ENOTFOUND
	})
	stopWatch()

	restarted := &env{
		Env: tokendtest.New(t, tokendtest.Options{DBFile: e.DBFile, Clock: e.Clock}), t: t,
		clientID: e.clientID, clientSecret: e.clientSecret, publicID: e.publicID, aliceID: e.aliceID,
	}
	if restarted.active(at) {
		t.Fatal("after a restart, the token of a revoked, expired session is active again")
	}
	if r := restarted.userinfo(at); r.Status != 401 {
		t.Fatalf("after a restart, /userinfo accepts the token of a revoked session: %d", r.Status)
	}

	// Once the token has expired too (the session's end plus the longest
	// access-token lifetime), the revocation may go.
	e.Clock.Advance(12 * time.Minute)
	if err := restarted.Engine.PurgeRevokedSessions(ctx); err != nil {
		t.Fatal(err)
	}
	_, sessions, err := restarted.Store.Revoked(ctx, e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 0 {
		t.Errorf("revocations kept after every token expired: %v", sessions)
	}
}

// TestSubMeansOneThingPerTokenKind is the attack on the two meanings of
// sub: user b is named with user a's id, so b's Atoti token carries a's id
// in sub. /userinfo and introspection must show b, never a.
func TestSubMeansOneThingPerTokenKind(t *testing.T) {
	e := newEnv(t, withAtoti())
	hash, err := secret.HashPassword("b's password", tokendtest.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	// Written to the store directly: `user add` refuses such a name now,
	// but a store may hold one from before.
	b := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: e.aliceID, PasswordHash: hash, Roles: []string{"ROLE_B"}, CreatedAt: time.Now()}
	if err := e.Store.CreateUser(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	tok := e.atotiLogin(b.Username, "b's password")
	if claims, _ := e.verifyWithJWKS(tok); claims["sub"] != e.aliceID {
		t.Fatalf("the Atoti token's sub is %v, want b's name (a's id)", claims["sub"])
	}

	r := e.userinfo(tok)
	if r.Status != 200 {
		t.Fatalf("userinfo: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if m["sub"] != b.ID || m["preferred_username"] != b.Username || m["preferred_username"] == "alice" {
		t.Errorf("userinfo of b's token shows %v, want b (sub %s)", m, b.ID)
	}
	if roles, _ := m["roles"].([]any); len(roles) != 1 || roles[0] != "ROLE_B" {
		t.Errorf("userinfo roles %v, want b's", m["roles"])
	}

	in := e.introspect(tok)
	if in["active"] != true || in["sub"] != b.ID || in["username"] != b.Username {
		t.Errorf("introspection of b's token shows %v, want b (sub %s)", in, b.ID)
	}

	// Alice's own tokens still show alice.
	at := e.login().Str(t, "access_token")
	if m := e.userinfo(at).JSON(t); m["sub"] != e.aliceID || m["preferred_username"] != "alice" {
		t.Errorf("userinfo of alice's token %v", m)
	}
	if m := e.introspect(e.atotiLogin("alice", alicePassword)); m["sub"] != e.aliceID || m["username"] != "alice" {
		t.Errorf("introspection of alice's atoti token %v", m)
	}
}
