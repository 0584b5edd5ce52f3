package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/sqlite"
	"github.com/tokend/tokend/tokendtest"
)

// within polls cond until it holds or a second has passed.
func within(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not take effect within one second", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLiveChanges makes changes through a second handle on the same SQLite
// file, as the CLI does from another process, while the server watches.
func TestLiveChanges(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go e.Engine.Watch(ctx, 250*time.Millisecond, nil)

	cli, err := sqlite.Open(ctx, e.DBFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })

	t.Run("secret rotated", func(t *testing.T) {
		e.ccToken() // the client is now cached
		newSecret, err := grant.RotateClientSecret(ctx, cli, e.clientID, 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		within(t, "secret rotation", func() bool {
			return e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.basic()).Status == 401
		})
		e.clientSecret = newSecret
		if r := e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.basic()); r.Status != 200 {
			t.Fatalf("new secret: %d %s", r.Status, r.Body)
		}
	})
	t.Run("secret rotated with overlap", func(t *testing.T) {
		old := e.clientSecret
		newSecret, err := grant.RotateClientSecret(ctx, cli, e.clientID, 10*time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		within(t, "secret rotation", func() bool {
			return e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.clientID+":"+newSecret).Status == 200
		})
		if r := e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.clientID+":"+old); r.Status != 200 {
			t.Fatalf("old secret within the overlap: %d", r.Status)
		}
		e.Clock.Advance(11 * time.Minute)
		if r := e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.clientID+":"+old); r.Status != 401 {
			t.Fatalf("old secret after the overlap: %d", r.Status)
		}
		e.clientSecret = newSecret
	})
	t.Run("key rotated", func(t *testing.T) {
		now := e.Clock.Now()
		k, err := keys.Generate("ES256", now, now)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := cli.ListKeys(ctx)
		if err := cli.AddKey(ctx, k, stored[len(stored)-1].ID); err != nil {
			t.Fatal(err)
		}
		within(t, "key rotation", func() bool {
			_, h := e.verifyWithJWKS(e.ccToken())
			return h.KeyID == k.ID
		})
	})
	t.Run("access token revoked elsewhere", func(t *testing.T) {
		tok := e.ccToken()
		if e.introspect(tok)["active"] != true {
			t.Fatal("fresh token inactive")
		}
		_, claims := tokendtest.Decode(tok)
		if err := cli.RevokeToken(ctx, claims["jti"].(string), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		within(t, "token revocation", func() bool { return e.introspect(tok)["active"] == false })
	})
	t.Run("session revoked elsewhere", func(t *testing.T) {
		at := e.login().Str(t, "access_token")
		_, claims := tokendtest.Decode(at)
		if err := cli.RevokeSession(ctx, claims["sid"].(string), time.Now(), "test"); err != nil {
			t.Fatal(err)
		}
		within(t, "session revocation", func() bool { return e.introspect(at)["active"] == false })
	})
	t.Run("user disabled", func(t *testing.T) {
		rt := e.login().Str(t, "refresh_token")
		if err := cli.DisableUser(ctx, e.aliceID, time.Now()); err != nil {
			t.Fatal(err)
		}
		within(t, "user disable", func() bool {
			return e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword, "client_id", e.publicID), "").Status == 400 &&
				e.refresh(rt).Status == 400
		})
	})
	t.Run("client disabled", func(t *testing.T) {
		tok := e.ccToken()
		if err := cli.DisableClient(ctx, e.clientID); err != nil {
			t.Fatal(err)
		}
		within(t, "client disable", func() bool {
			return e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.basic()).Status == 401
		})
		otherID, otherSecret := e.addClient(false, "client_credentials")
		r := e.post("/oauth2/introspect", vals("token", tok), otherID+":"+otherSecret)
		if r.JSON(t)["active"] != false {
			t.Fatal("tokens of a disabled client must introspect inactive")
		}
	})
}
