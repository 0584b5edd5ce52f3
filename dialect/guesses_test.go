package dialect_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/grant"
)

// parallelGuesses sends n wrong passwords at once, spread over the four
// places that check a password, each from ip(i), and returns how many were
// evaluated (answered as bad credentials) and how many refused with 429.
func parallelGuesses(t *testing.T, e *env, n int, user func(i int) string, ip func(i int) string) (evaluated, refused int) {
	t.Helper()
	places := []func(user, ip string) response{
		func(u, ip string) response { return e.oauthPassword(u, "wrong", ip) },
		func(u, ip string) response { return e.atotiBasic(u, "wrong", ip) },
		func(u, ip string) response { return e.sjObtain(u, "wrong", ip) },
		func(u, ip string) response { return e.ocmLogin(u, "wrong", ip) },
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := places[i%len(places)](user(i), ip(i))
			mu.Lock()
			defer mu.Unlock()
			switch r.Status {
			case 429:
				refused++
			case 400, 401:
				evaluated++
			default:
				t.Errorf("guess %d: %d %s", i, r.Status, r.Body)
			}
		}()
	}
	close(start)
	wg.Wait()
	return evaluated, refused
}

// TestLockoutHoldsUnderConcurrency: 60 wrong passwords for one account,
// all at once and over every dialect that checks a password, from many
// addresses: each attempt is reserved against the account's counter before
// it is hashed, so no more than the threshold are ever evaluated (before
// the fix all 60 were).
func TestLockoutHoldsUnderConcurrency(t *testing.T) {
	e := newEnv(t, grant.DefaultLimits, "127.0.0.1/32")
	evaluated, refused := parallelGuesses(t, e, 60,
		func(int) string { return aliceName },
		func(i int) string { return fmt.Sprintf("198.51.100.%d", i+1) })
	if evaluated > grant.DefaultLimits.LockoutThreshold || evaluated+refused != 60 {
		t.Fatalf("%d guesses evaluated, %d refused; want at most %d evaluated", evaluated, refused, grant.DefaultLimits.LockoutThreshold)
	}
	// And the account is locked for the right password too.
	if r := e.oauthPassword(aliceName, alicePassword, "192.0.2.50"); r.Status != 429 {
		t.Fatalf("right password during the lock: %d %s", r.Status, r.Body)
	}
	e.Clock.Advance(grant.DefaultLimits.LockoutBase + time.Second)
	wantOK(t, e.oauthPassword(aliceName, alicePassword, "192.0.2.50"), "access_token")
}

// TestIPLimitHoldsUnderConcurrency: 120 wrong passwords for 120 accounts,
// all at once from one address: no more than the per-IP limit are
// evaluated.
func TestIPLimitHoldsUnderConcurrency(t *testing.T) {
	e := newEnv(t, grant.DefaultLimits, "127.0.0.1/32")
	evaluated, refused := parallelGuesses(t, e, 120,
		func(i int) string { return fmt.Sprintf("user-%d", i) },
		func(int) string { return "203.0.113.77" })
	if evaluated > grant.DefaultLimits.RateLimit || evaluated+refused != 120 {
		t.Fatalf("%d guesses evaluated, %d refused; want at most %d evaluated", evaluated, refused, grant.DefaultLimits.RateLimit)
	}
	// The address is refused at password and client-secret checks, and
	// served where it presents a token.
	if r := e.oauth("203.0.113.77", "grant_type", "client_credentials"); r.Status != 429 {
		t.Fatalf("client_credentials from the address: %d", r.Status)
	}
	g := e.genuine(t)
	wantOK(t, e.atotiBearer("Bearer", g.atoti, "203.0.113.77"), "token")
}

// TestLockedNameFloodHitsTheIPLimit: refusals of a locked account count
// against the client IP, so one address hammering a locked name is soon
// refused by the per-IP limit at every password and client-secret check.
func TestLockedNameFloodHitsTheIPLimit(t *testing.T) {
	e := newEnv(t, grant.DefaultLimits, "127.0.0.1/32")
	const attacker = "203.0.113.9"
	lim := grant.DefaultLimits
	for range lim.LockoutThreshold {
		oauth400.check(t, e.oauthPassword("ghost", "wrong", attacker))
	}
	for range lim.RateLimit - lim.LockoutThreshold {
		oauthLock429.check(t, e.oauthPassword("ghost", "wrong", attacker))
	}
	// The address is now over its limit: a correct client is refused from
	// it, and served from elsewhere.
	oauthIP429.check(t, e.oauth(attacker, "grant_type", "client_credentials"))
	oauthIP429.check(t, e.oauthPassword("ghost", "wrong", attacker))
	wantOK(t, e.oauth("203.0.113.10", "grant_type", "client_credentials"), "access_token")
}

// TestConcurrentRightPasswordsAreNotLocked: a burst of right passwords for
// one account, from one address, far past both limits, all log in: the
// reservations that hold the lockout under concurrency queue on this node
// instead of counting a crowd of good logins as a lock.
func TestConcurrentRightPasswordsAreNotLocked(t *testing.T) {
	e := newEnv(t, grant.DefaultLimits, "127.0.0.1/32")
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 64 {
		wg.Go(func() {
			var r response
			switch i % 3 {
			case 0:
				r = e.oauthPassword(aliceName, alicePassword, "203.0.113.200")
			case 1:
				r = e.sjObtain(aliceName, alicePassword, "203.0.113.200")
			default:
				r = e.ocmLogin(aliceName, alicePassword, "203.0.113.200")
			}
			mu.Lock()
			statuses[r.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[200] != 64 {
		t.Fatalf("64 concurrent right passwords: %v, want 64 × 200", statuses)
	}
}
