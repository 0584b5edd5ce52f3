package verify_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
	"github.com/tokend/tokend/tokendtest"
	"github.com/tokend/tokend/verify"
)

// Revocations reach a subscribed verifier through the feed: a token
// revoked at /oauth2/revoke, a session ended by revoking its refresh
// token, a disabled user, a disabled client. Other tokens keep passing.
func TestRevocationReachesVerifier(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t)
	other := is.appToken("")

	t.Run("access token", func(t *testing.T) {
		tok := is.appToken("")
		mustVerify(t, v, tok)
		is.revoke(tok, is.appID, is.appSecret)
		// The feed brings it within about a second; the bound here is
		// loose on purpose (a shared machine), the measured figures are
		// in the report.
		took := eventually(t, v, tok, verify.ErrRevoked, 5*time.Second)
		t.Logf("refused %v after the revocation", took)
		mustVerify(t, v, other)
	})
	t.Run("session", func(t *testing.T) {
		access, refresh := is.login()
		mustVerify(t, v, access)
		is.revoke(refresh, is.publicID, "")
		eventually(t, v, access, verify.ErrRevoked, 5*time.Second)
	})
	t.Run("disabled user", func(t *testing.T) {
		bob := is.AddUser("bob", "bob's long password")
		access, _ := is.login()
		// bob's token, by the password grant at the public client
		bobTok := func() string {
			r := is.Do("POST", "/oauth2/token", "application/x-www-form-urlencoded",
				"grant_type=password&username=bob&password=bob%27s+long+password&client_id="+is.publicID)
			if r.Status != 200 {
				t.Fatalf("bob's login: %d %s", r.Status, r.Body)
			}
			return r.Str(t, "access_token")
		}()
		if err := is.Store.DisableUser(t.Context(), bob, is.Clock.Now()); err != nil { // as `tokend user disable` does
			t.Fatal(err)
		}
		eventually(t, v, bobTok, verify.ErrRevoked, 5*time.Second)
		mustVerify(t, v, access) // alice's
	})
	t.Run("disabled client", func(t *testing.T) {
		tok := is.appToken("")
		if err := is.Store.DisableClient(t.Context(), is.appID); err != nil {
			t.Fatal(err)
		}
		eventually(t, v, tok, verify.ErrRevoked, 5*time.Second)
	})
	t.Run("a verifier started later gets the full set", func(t *testing.T) {
		if _, err := is.verifier(t).Verify(t.Context(), other); !errors.Is(err, verify.ErrRevoked) {
			t.Errorf("token of the disabled client: %v", err)
		}
	})
}

// When the node the verifier follows restarts, its cursor is older than
// what the new node loaded: the verifier gets the full set, flagged
// reset, with what was revoked while the node was down.
func TestFeedResetAfterNodeRestart(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, func(o *verify.Options) { o.FeedWait = time.Second })
	before, during := is.appToken(""), is.appToken("")
	is.revoke(before, is.appID, is.appSecret)
	eventually(t, v, before, verify.ErrRevoked, 5*time.Second)

	is.stop()
	is.revoke(during, is.appID, is.appSecret) // through the other node
	// A new node on the same store, at the same address.
	store, err := sqlite.Open(t.Context(), is.DBFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	hasher, _ := secret.NewHasher(tokendtest.Cheap, 0, 8)
	engine, err := grant.New(grant.Config{Issuer: is.url, Audience: audience, Alg: "ES256", AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour},
		grant.Deps{Store: store, Hasher: hasher, Now: is.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { engine.Watch(ctx, 20*time.Millisecond, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	is.Handler = (&httpapi.Server{Engine: engine, Store: store, Metrics: metrics.New(), Log: is.Log}).Handler()
	is.AddClient(false, "", nil) // a change: the new node loads past the verifier's cursor
	if _, err := engine.Revocations(t.Context(), 0, false, 0); err != nil {
		t.Fatal(err)
	}
	is.start()

	eventually(t, v, during, verify.ErrRevoked, 10*time.Second)
	if _, err := v.Verify(t.Context(), before); !errors.Is(err, verify.ErrRevoked) {
		t.Errorf("token revoked before the restart, after the reset: %v", err)
	}
}

// Entries leave the verifier once no token they match can be live.
func TestFeedEntriesExpire(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t)
	tok := is.appToken("")
	is.revoke(tok, is.appID, is.appSecret)
	eventually(t, v, tok, verify.ErrRevoked, 5*time.Second)
	if n := v.Status().Revocations; n != 1 {
		t.Fatalf("%d entries held, want 1", n)
	}
	is.Clock.Advance(16 * time.Minute)
	// Any answer of the feed prunes; revoke another token to cause one.
	next := is.appToken("")
	is.revoke(next, is.appID, is.appSecret)
	eventually(t, v, next, verify.ErrRevoked, 5*time.Second)
	if n := v.Status().Revocations; n != 1 {
		t.Errorf("%d entries held, want 1 (the expired one dropped)", n)
	}
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, verify.ErrExpired) {
		t.Errorf("the first token: %v", err)
	}
}
