package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

func testKeyCompareAndSwap(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	e1, e2, e3 := newKey("ES256"), newKey("ES256"), newKey("ES256")
	d1 := newKey("EdDSA")
	reused := newKey("ES256")
	reused.ID = e1.ID
	// Steps run in order on one store.
	steps := []struct {
		name     string
		key      *tokend.SigningKey
		afterKid string
		want     string
	}{
		{"first key of an empty line", e1, "", ""},
		{"again as first key", e2, "", tokend.ECONFLICT},
		{"after an unknown kid", e2, "no-such-kid", tokend.ECONFLICT},
		{"after the latest", e2, e1.ID, ""},
		{"after a stale kid", e3, e1.ID, tokend.ECONFLICT},
		{"after the latest again", e3, e2.ID, ""},
		{"after another line's latest", d1, e3.ID, tokend.ECONFLICT},
		{"first key of another line", d1, "", ""},
		{"with a used kid", reused, e3.ID, tokend.ECONFLICT},
	}
	for _, st := range steps {
		wantCode(t, s.AddKey(t.Context(), st.key, st.afterKid), st.want, "add key "+st.name)
	}
	for alg, want := range map[string][]*tokend.SigningKey{"ES256": {e1, e2, e3}, "EdDSA": {d1}} {
		if got := keysOf(t, s, alg); !slices.Equal(ids(got, keyID), ids(want, keyID)) {
			t.Errorf("%s line = %v, want %v", alg, ids(got, keyID), ids(want, keyID))
		}
	}
}

func testKeyList(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	keys, err := s.ListKeys(t.Context())
	must(t, err, "list keys")
	if len(keys) != 0 {
		t.Fatalf("ListKeys of an empty store = %v, want none", ids(keys, keyID))
	}
	// Lines interleaved, so that grouping must come from the store.
	want := map[string][]*tokend.SigningKey{}
	byID := map[string]*tokend.SigningKey{}
	for _, alg := range []string{"RS256", "ES256", "EdDSA", "ES256", "RS256", "ES256", "RS512", "EdDSA"} {
		line := want[alg]
		after := ""
		if len(line) > 0 {
			after = line[len(line)-1].ID
		}
		k := addKey(t, s, newKey(alg), after)
		want[alg] = append(line, k)
		byID[k.ID] = k
	}
	keys, err = s.ListKeys(t.Context())
	must(t, err, "list keys")
	if len(keys) != len(byID) {
		t.Fatalf("ListKeys returned %d keys, want %d", len(keys), len(byID))
	}
	got := map[string][]*tokend.SigningKey{}
	for i, k := range keys {
		if i > 0 && keys[i-1].Alg != k.Alg && got[k.Alg] != nil {
			t.Fatalf("ListKeys does not group keys by alg: %s appears again at %d", k.Alg, i)
		}
		got[k.Alg] = append(got[k.Alg], k)
		if byID[k.ID] == nil {
			t.Fatalf("ListKeys returned unknown key %s", k.ID)
		}
		wantEqual(t, "listed key", k, byID[k.ID])
	}
	for alg, line := range want {
		if g, w := ids(got[alg], keyID), ids(line, keyID); !slices.Equal(g, w) {
			t.Errorf("%s line = %v, want %v (oldest first)", alg, g, w)
		}
	}
}

func testKeyRevoke(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	k1 := addKey(t, s, newKey("ES256"), "")
	k2 := addKey(t, s, newKey("ES256"), k1.ID)
	at := now()
	must(t, s.RevokeKey(t.Context(), k1.ID, at), "revoke key")
	k1.RevokedAt = at
	line := keysOf(t, s, "ES256")
	if len(line) != 2 {
		t.Fatalf("ES256 line = %v, want 2 keys", ids(line, keyID))
	}
	wantEqual(t, "revoked key", line[0], k1)
	wantEqual(t, "other key", line[1], k2)

	wantCode(t, s.RevokeKey(t.Context(), k1.ID, at.Add(time.Minute)), tokend.ENOTFOUND, "revoke a revoked key")
	wantEqual(t, "key revoked twice", keysOf(t, s, "ES256")[0], k1)
	wantCode(t, s.RevokeKey(t.Context(), "no-such-kid", at), tokend.ENOTFOUND, "revoke an unknown key")
}

func testKeyConcurrentRotation(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	first := addKey(t, s, newKey("ES256"), "")
	const n = 20
	errs := make([]error, n)
	candidates := make([]*tokend.SigningKey, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		candidates[i] = newKey("ES256")
		wg.Go(func() {
			<-start
			errs[i] = s.AddKey(t.Context(), candidates[i], first.ID)
		})
	}
	close(start)
	wg.Wait()
	var winner *tokend.SigningKey
	for i, err := range errs {
		switch tokend.ErrorCode(err) {
		case "":
			if winner != nil {
				t.Fatalf("AddKey succeeded for both %s and %s after the same kid", winner.ID, candidates[i].ID)
			}
			winner = candidates[i]
		case tokend.ECONFLICT:
		default:
			t.Fatalf("AddKey %d: %v, want nil or ECONFLICT", i, err)
		}
	}
	if winner == nil {
		t.Fatal("no AddKey succeeded")
	}
	if got, want := ids(keysOf(t, s, "ES256"), keyID), []string{first.ID, winner.ID}; !slices.Equal(got, want) {
		t.Fatalf("ES256 line = %v, want %v", got, want)
	}
}
