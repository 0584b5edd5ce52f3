package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// Reseal: the one transaction that seals (or moves to another master key)
// every signing key's private part and every install secret.

// resealFixture stores two keys (one revoked) and two secrets, and returns
// the keys as stored.
func resealFixture(t *testing.T, s tokend.Store) []*tokend.SigningKey {
	t.Helper()
	addKey(t, s, newKey("ES256"), "")
	revoked := addKey(t, s, newKey("EdDSA"), "")
	must(t, s.RevokeKey(t.Context(), revoked.ID, now()), "revoke key")
	for _, name := range []string{"alpha", "beta"} {
		_, err := s.Secret(t.Context(), name, func() ([]byte, error) { return []byte("clear " + name), nil })
		must(t, err, "secret "+name)
	}
	stored, err := s.ListKeys(t.Context())
	must(t, err, "list keys")
	return stored
}

func secretValue(t *testing.T, s tokend.Store, name string) []byte {
	t.Helper()
	v, err := s.Secret(t.Context(), name, func() ([]byte, error) { return nil, errors.New("the secret should exist") })
	must(t, err, "secret "+name)
	return v
}

func testResealRewrites(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	before := resealFixture(t, s)
	seq := latestSeq(t, s)
	target := before[0].ID // rewrite one key and one secret
	seen := map[string][]byte{}
	n, err := s.Reseal(t.Context(), func(kind, name string, value []byte) ([]byte, bool, error) {
		seen[kind+" "+name] = bytes.Clone(value)
		if (kind == tokend.ResealKey && name == target) || (kind == tokend.ResealSecret && name == "alpha") {
			return append([]byte("sealed:"), value...), true, nil
		}
		return []byte("ignored, since unchanged"), false, nil
	})
	must(t, err, "reseal")
	if n != 2 {
		t.Errorf("Reseal = %d, want 2", n)
	}
	want := map[string][]byte{
		tokend.ResealSecret + " alpha": []byte("clear alpha"),
		tokend.ResealSecret + " beta":  []byte("clear beta"),
	}
	for _, k := range before {
		want[tokend.ResealKey+" "+k.ID] = k.PrivateKey
	}
	if len(seen) != len(want) {
		t.Errorf("fn saw %d values, want %d: %q", len(seen), len(want), seen)
	}
	for k, v := range want {
		if !bytes.Equal(seen[k], v) {
			t.Errorf("fn saw %s = %q, want %q", k, seen[k], v)
		}
	}

	after, err := s.ListKeys(t.Context())
	must(t, err, "list keys")
	if len(after) != len(before) {
		t.Fatalf("%d keys after Reseal, want %d", len(after), len(before))
	}
	for i, k := range before {
		w := *k
		if k.ID == target {
			w.PrivateKey = append([]byte("sealed:"), k.PrivateKey...)
		}
		wantEqual(t, "key "+k.ID, after[i], &w)
	}
	if got := secretValue(t, s, "alpha"); string(got) != "sealed:clear alpha" {
		t.Errorf("secret alpha = %q", got)
	}
	if got := secretValue(t, s, "beta"); string(got) != "clear beta" {
		t.Errorf("secret beta = %q, want it unchanged", got)
	}
	if got := latestSeq(t, s); got != seq {
		t.Errorf("Reseal recorded changes (seq %d -> %d): the opened values are the same", seq, got)
	}
}

func testResealRollsBack(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	before := resealFixture(t, s)
	boom := errors.New("this value does not open")
	calls := 0
	n, err := s.Reseal(t.Context(), func(kind, name string, value []byte) ([]byte, bool, error) {
		calls++
		if kind == tokend.ResealSecret && name == "beta" {
			return nil, false, boom
		}
		return append([]byte("sealed:"), value...), true, nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Reseal = %d, %v; want fn's error", n, err)
	}
	if calls != len(before)+2 {
		t.Errorf("fn called %d times, want %d (every value up to the failing one)", calls, len(before)+2)
	}
	after, err := s.ListKeys(t.Context())
	must(t, err, "list keys")
	for i, k := range before {
		wantEqual(t, "key "+k.ID+" after a failed Reseal", after[i], k)
	}
	if got := secretValue(t, s, "alpha"); string(got) != "clear alpha" {
		t.Errorf("secret alpha = %q after a failed Reseal, want it unchanged", got)
	}
}

// Many Reseals at once, each sealing what is not sealed yet: every value
// ends up sealed exactly once, and the counts add up to the number of values.
func testResealConcurrent(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	before := resealFixture(t, s)
	const n = 8
	counts := make([]int, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			first := true
			counts[i], errs[i] = s.Reseal(t.Context(), func(kind, name string, value []byte) ([]byte, bool, error) {
				if first {
					// Hold the transaction open between its read and its
					// first write, so that the others read meanwhile if
					// the store lets them.
					first = false
					time.Sleep(20 * time.Millisecond)
				}
				if bytes.HasPrefix(value, []byte("sealed:")) {
					return nil, false, nil
				}
				return append([]byte(fmt.Sprintf("sealed:%d:", i)), value...), true, nil
			})
		})
	}
	close(start)
	wg.Wait()
	total := 0
	for i := range n {
		must(t, errs[i], fmt.Sprintf("reseal %d", i))
		total += counts[i]
	}
	if want := len(before) + 2; total != want {
		t.Errorf("concurrent Reseals rewrote %d values in all, want %d (each exactly once)", total, want)
	}
	after, err := s.ListKeys(t.Context())
	must(t, err, "list keys")
	values := [][]byte{secretValue(t, s, "alpha"), secretValue(t, s, "beta")}
	for _, k := range after {
		values = append(values, k.PrivateKey)
	}
	for _, v := range values {
		if c := bytes.Count(v, []byte("sealed:")); c != 1 {
			t.Errorf("value %q sealed %d times, want once", v, c)
		}
	}
}
