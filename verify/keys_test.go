package verify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/tokendtest"
	"github.com/tokend/tokend/verify"
)

// rotate adds an ES256 key that signs from activatesAt and waits until the
// issuer's engine has it.
func (is *issuer) rotate(activatesAt time.Time) string {
	is.t.Helper()
	ctx := is.t.Context()
	stored, err := is.Store.ListKeys(ctx)
	if err != nil {
		is.t.Fatal(err)
	}
	kid, err := grant.AddKey(ctx, is.Store, nil, "ES256", is.Clock.Now(), activatesAt, grant.NewestKid(stored, "ES256"))
	if err != nil {
		is.t.Fatal(err)
	}
	for range 500 {
		if is.Engine.Ring().Verifying(kid, is.Clock.Now()) != nil {
			return kid
		}
		time.Sleep(10 * time.Millisecond)
	}
	is.t.Fatal("the engine did not load the new key")
	return ""
}

// A key tokend announces before it signs reaches the cache through the
// background refresh: when it starts signing, its tokens verify even with
// the issuer unreachable.
func TestAnnouncedKeyIsCachedBeforeItSigns(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, func(o *verify.Options) { o.MaxKeyAge = 100 * time.Millisecond; o.Offline, o.ClientID = true, "" })
	mustVerify(t, v, is.appToken(""))
	kid := is.rotate(is.Clock.Now().Add(time.Hour))
	// Two refreshes after the key was announced: one of them read it.
	for n, deadline := is.jwksFetches.Load()+2, time.Now().Add(10*time.Second); is.jwksFetches.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatal("no background refresh of the key set")
		}
		time.Sleep(20 * time.Millisecond)
	}
	is.stop()
	is.Clock.Advance(time.Hour + time.Second)
	tok := is.appToken("") // through the other node, which is up
	if got := kidOf(t, tok); got != kid {
		t.Fatalf("the new token is signed by %s, want the announced %s", got, kid)
	}
	mustVerify(t, v, tok)
}

// A token signed by a key the cache lacks (rotated without announcement)
// causes one fetch, and verifies; a forged kid then causes none.
func TestUnknownKidRefetchesOnce(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, func(o *verify.Options) { o.KeyRefetchInterval = time.Hour })
	mustVerify(t, v, is.appToken(""))
	kid := is.rotate(is.Clock.Now())
	tok := is.appToken("")
	if kidOf(t, tok) != kid {
		t.Fatalf("not signed by the new key")
	}
	before := is.jwksFetches.Load()
	mustVerify(t, v, tok)
	if n := is.jwksFetches.Load() - before; n != 1 {
		t.Errorf("%d key set fetches for a new kid, want 1", n)
	}
	mustVerify(t, v, tok)
	if _, err := v.Verify(t.Context(), forgedKid(t, is)); !errors.Is(err, verify.ErrUnknownKey) {
		t.Errorf("forged kid: %v", err)
	}
	if n := is.jwksFetches.Load() - before; n != 1 {
		t.Errorf("%d key set fetches after a forged kid within the interval, want still 1", n)
	}
}

// forgedKid is a token with the issuer's claims, a random kid and a key of
// the attacker's.
func forgedKid(t *testing.T, is *issuer) string {
	h, c := tokendtest.Decode(is.appToken(""))
	b := make([]byte, 8)
	rand.Read(b)
	h["kid"] = hex.EncodeToString(b)
	return tokendtest.Sign(h, c, attackerKey)
}

var attackerKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

// A flood of tokens with random kids costs the issuer at most one key set
// fetch per KeyRefetchInterval (counted by the issuer).
func TestKidFloodIsBounded(t *testing.T) {
	is := newIssuer(t)
	const interval = 200 * time.Millisecond
	v := is.verifier(t, func(o *verify.Options) { o.KeyRefetchInterval = interval; o.MaxKeyAge = time.Hour })
	h, c := tokendtest.Decode(is.appToken(""))
	var toks []string
	for i := range 400 {
		h["kid"] = "forged-" + string(rune('a'+i%26)) + hex.EncodeToString([]byte{byte(i), byte(i >> 8)})
		toks = append(toks, tokendtest.Sign(h, c, attackerKey))
	}
	before := is.jwksFetches.Load()
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var accepted int
	for w := range 8 {
		wg.Go(func() {
			for round := range 3 {
				for i := w; i < len(toks); i += 8 {
					if _, err := v.Verify(t.Context(), toks[i]); !errors.Is(err, verify.ErrUnknownKey) {
						mu.Lock()
						accepted++
						mu.Unlock()
					}
				}
				if round < 2 {
					time.Sleep(interval / 2)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fetches := is.jwksFetches.Load() - before
	if accepted != 0 {
		t.Errorf("%d forged tokens not refused with ErrUnknownKey", accepted)
	}
	if limit := int64(elapsed/interval) + 1; fetches > limit || fetches < 1 {
		t.Errorf("%d key set fetches for %d forged tokens in %v, want 1 to %d (one per %v)", fetches, 3*len(toks), elapsed, limit, interval)
	}
	t.Logf("%d forged tokens in %v: %d key set fetches", 3*len(toks), elapsed, fetches)
}

// While the issuer is unreachable, verification goes on with the cached
// keys and the last revocation set; when it is back, the feed resumes and
// catches up with what was revoked meanwhile.
func TestIssuerOutage(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, func(o *verify.Options) { o.MaxKeyAge = 100 * time.Millisecond; o.FeedWait = time.Second })
	kept, revoked, early := is.appToken(""), is.appToken(""), is.appToken("")
	is.revoke(early, is.appID, is.appSecret)
	eventually(t, v, early, verify.ErrRevoked, 10*time.Second)

	is.stop()
	fetches := is.jwksFetches.Load()
	time.Sleep(300 * time.Millisecond) // background refreshes fail meanwhile
	mustVerify(t, v, kept)
	if _, err := v.Verify(t.Context(), early); !errors.Is(err, verify.ErrRevoked) {
		t.Errorf("during the outage a token revoked before it: %v", err)
	}
	is.revoke(revoked, is.appID, is.appSecret) // through the other node
	mustVerify(t, v, revoked)                  // the verifier cannot know yet
	if n := is.jwksFetches.Load(); n != fetches {
		t.Fatalf("the issuer served %d fetches while down", n-fetches)
	}

	during := v.Status()
	if time.Since(during.KeysFetched) < 200*time.Millisecond || time.Since(during.FeedContact) < 200*time.Millisecond {
		t.Errorf("status during the outage %+v: the last contacts should be from before it", during)
	}
	is.start()
	took := eventually(t, v, revoked, verify.ErrRevoked, 30*time.Second)
	t.Logf("refused %v after the issuer came back", took)
	mustVerify(t, v, kept)
}

// A key revoked at the issuer leaves the key set; tokens it signed are
// refused from the next refresh on, even those verified (and cached)
// before.
func TestRevokedKeyEndsItsTokens(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, func(o *verify.Options) { o.MaxKeyAge = 100 * time.Millisecond; o.KeyRefetchInterval = time.Hour })
	old := is.appToken("")
	mustVerify(t, v, old)
	mustVerify(t, v, old) // from the cache
	is.rotate(is.Clock.Now())
	fresh := is.appToken("")
	if err := is.Store.RevokeKey(t.Context(), kidOf(t, old), is.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, v, old, verify.ErrUnknownKey, 5*time.Second)
	mustVerify(t, v, fresh)
}

// A token verified once is checked again for its times each time.
func TestCachedTokenExpires(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t)
	tok := is.appToken("")
	mustVerify(t, v, tok)
	is.Clock.Advance(15 * time.Minute)
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, verify.ErrExpired) {
		t.Errorf("a cached token past its exp: %v", err)
	}
}
