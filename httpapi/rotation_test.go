package httpapi_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
	"github.com/tokend/tokend/tokendtest"
)

func withRotation(period, prepublish time.Duration) envOption {
	return func(o *tokendtest.Options) {
		o.Config = func(c *grant.Config) { c.KeyRotationPeriod, c.KeyPrepublish = period, prepublish }
	}
}

func TestAutomaticKeyRotation(t *testing.T) {
	e := newEnv(t, withRotation(30*24*time.Hour, time.Hour))
	ctx := t.Context()
	_, h := e.verifyWithJWKS(e.ccToken())
	oldKid := h.KeyID
	if added, err := e.Engine.RotateDueKeys(ctx); err != nil || len(added) != 0 {
		t.Fatalf("a fresh key is not due: %v %v", added, err)
	}

	e.Clock.Advance(30*24*time.Hour + time.Minute)
	added, err := e.Engine.RotateDueKeys(ctx)
	if err != nil || len(added) != 1 {
		t.Fatalf("rotation: %v %v", added, err)
	}
	newKid := added[0]
	if kids := jwksKids(t, e); len(kids) != 2 || !contains(kids, newKid) || !contains(kids, oldKid) {
		t.Fatalf("the new key must be announced beside the old one: %v", kids)
	}
	if _, h := e.verifyWithJWKS(e.ccToken()); h.KeyID != oldKid {
		t.Fatal("the new key must not sign during pre-publication")
	}
	if again, _ := e.Engine.RotateDueKeys(ctx); len(again) != 0 {
		t.Fatalf("rotated twice: %v", again)
	}

	e.Clock.Advance(59 * time.Minute)
	oldTok := e.ccToken() // the old key's last tokens
	if _, h := e.verifyWithJWKS(oldTok); h.KeyID != oldKid {
		t.Fatal("the old key signs until the new one activates")
	}
	e.Clock.Advance(2 * time.Minute)
	if _, h := e.verifyWithJWKS(e.ccToken()); h.KeyID != newKid {
		t.Fatal("after pre-publication the new key signs")
	}
	if e.introspect(oldTok)["active"] != true {
		t.Fatal("tokens of the old key keep verifying until they expire")
	}
	e.Clock.Advance(24*time.Hour + time.Minute) // past the longest token lifetime
	if kids := jwksKids(t, e); len(kids) != 1 || kids[0] != newKid {
		t.Fatalf("the old key must leave the JWKS once its tokens expired: %v", kids)
	}
}

// TestRotationByOneNodeOnly starts several engines on one store, all due
// at once: exactly one rotates.
func TestRotationByOneNodeOnly(t *testing.T) {
	e := newEnv(t, withRotation(24*time.Hour, time.Minute))
	e.Clock.Advance(25 * time.Hour)
	ctx := context.Background()
	cfg := e.Engine.Config()
	var engines []*grant.Engine
	for range 5 {
		st, err := sqlite.Open(ctx, e.DBFile)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		h, _ := secret.NewHasher(tokendtest.Cheap, 1, 1)
		node, err := grant.New(cfg, grant.Deps{Store: st, Hasher: h, Now: e.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := node.Start(ctx); err != nil {
			t.Fatal(err)
		}
		engines = append(engines, node)
	}
	var mu sync.Mutex
	var all []string
	var wg sync.WaitGroup
	for _, node := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			added, err := node.RotateDueKeys(ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			all = append(all, added...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(all) != 1 {
		t.Fatalf("%d nodes rotated, want exactly 1", len(all))
	}
	keys, _ := e.Store.ListKeys(ctx)
	if len(keys) != 2 {
		t.Fatalf("%d keys in the store, want 2", len(keys))
	}
}
