package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// Reservations of attempts against failure counters (lockout and the
// per-IP limit, taken before a password is hashed).

func reserve(t *testing.T, s tokend.Store, at time.Time, a ...tokend.Attempt) []tokend.Reservation {
	t.Helper()
	r, err := s.ReserveAttempts(t.Context(), at, a)
	if err != nil {
		t.Fatalf("reserve attempts: %v", err)
	}
	if len(r) != len(a) {
		t.Fatalf("reserve attempts: %d answers for %d attempts", len(r), len(a))
	}
	return r
}

func testReserveLimitAndLock(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	t0 := now()
	acct := tokend.Attempt{Key: "acct:x", Window: 24 * time.Hour, Limit: 3, LockBase: time.Minute, LockMax: 4 * time.Minute}
	for i := 1; i <= 3; i++ {
		r := reserve(t, s, t0, acct)[0]
		if !r.Admitted || r.Count != i {
			t.Fatalf("attempt %d: %+v, want admitted with count %d", i, r, i)
		}
	}
	// The fourth is refused while the lock lasts, and changes nothing.
	r := reserve(t, s, t0.Add(59*time.Second), acct)[0]
	if r.Admitted || r.Count != 3 || !r.Last.Equal(t0) {
		t.Fatalf("attempt during the lock: %+v, want refused with the counter unchanged", r)
	}
	if until := acct.LockedUntil(r.FailureCount); !until.Equal(t0.Add(time.Minute)) {
		t.Fatalf("locked until %v, want %v", until, t0.Add(time.Minute))
	}
	// Once the lock has run out, one attempt is admitted and the next lock doubles.
	t1 := t0.Add(time.Minute)
	if r := reserve(t, s, t1, acct)[0]; !r.Admitted || r.Count != 4 {
		t.Fatalf("attempt after the lock: %+v", r)
	}
	if r := reserve(t, s, t1.Add(119*time.Second), acct)[0]; r.Admitted {
		t.Fatalf("the second lock must last 2 minutes: %+v", r)
	}
	if r := reserve(t, s, t1.Add(2*time.Minute), acct)[0]; !r.Admitted || r.Count != 5 {
		t.Fatalf("attempt after the second lock: %+v", r)
	}
	// Doubling stops at LockMax.
	t2 := t1.Add(2 * time.Minute)
	if r := reserve(t, s, t2.Add(4*time.Minute), acct)[0]; !r.Admitted || r.Count != 6 {
		t.Fatalf("attempt after a lock at its maximum: %+v", r)
	}

	// Without LockBase the counter refuses until its window ends, then starts again.
	ip := tokend.Attempt{Key: "ip:192.0.2.7", Window: time.Minute, Limit: 2}
	reserve(t, s, t0, ip)
	reserve(t, s, t0.Add(time.Second), ip)
	r = reserve(t, s, t0.Add(30*time.Second), ip)[0]
	if r.Admitted {
		t.Fatalf("over the limit: %+v", r)
	}
	if until := ip.LockedUntil(r.FailureCount); !until.Equal(t0.Add(time.Minute)) {
		t.Fatalf("limit ends %v, want the window's end %v", until, t0.Add(time.Minute))
	}
	if r := reserve(t, s, t0.Add(61*time.Second), ip)[0]; !r.Admitted || r.Count != 1 {
		t.Fatalf("a new window must start at one: %+v", r)
	}

	// Several attempts in one call are answered each on its own.
	both := reserve(t, s, t0.Add(62*time.Second), tokend.Attempt{Key: "acct:x", Window: 24 * time.Hour, Limit: 3, LockBase: time.Hour, LockMax: time.Hour}, ip)
	if both[0].Admitted || !both[1].Admitted || both[1].Count != 2 {
		t.Fatalf("mixed reservation: %+v", both)
	}
}

func testReserveConcurrent(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	at := now()
	// Several rounds on fresh counters: the first reservations of a burst
	// race to create the row, the others to read it back once refused.
	for round := range 5 {
		acct := tokend.Attempt{Key: fmt.Sprintf("acct:y%d", round), Window: 24 * time.Hour, Limit: 10, LockBase: time.Minute, LockMax: time.Hour}
		ip := tokend.Attempt{Key: fmt.Sprintf("ip:198.51.100.%d", round), Window: time.Minute, Limit: 30}
		var admittedAcct, admittedIP atomic.Int32
		var wg sync.WaitGroup
		for range 60 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.ReserveAttempts(t.Context(), at, []tokend.Attempt{ip, acct})
				if err != nil {
					t.Error(err)
					return
				}
				if r[0].Admitted {
					admittedIP.Add(1)
				}
				if r[1].Admitted {
					admittedAcct.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := admittedAcct.Load(); n != 10 {
			t.Fatalf("round %d: 60 concurrent attempts against a limit of 10 admitted %d", round, n)
		}
		if n := admittedIP.Load(); n != 30 {
			t.Fatalf("round %d: 60 concurrent attempts against a limit of 30 admitted %d", round, n)
		}
	}
}

func testSettleAttempts(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	t0 := now()
	ip := tokend.Attempt{Key: "ip:203.0.113.5", Window: time.Minute, Limit: 5}
	acct := tokend.Attempt{Key: "acct:z", Window: time.Hour, Limit: 5, LockBase: time.Minute, LockMax: time.Minute}
	reserve(t, s, t0, ip, acct)
	reserve(t, s, t0, ip, acct)
	if err := s.SettleAttempts(ctx, t0, []string{ip.Key}, []string{acct.Key}); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.Failures(ctx, ip.Key); f.Count != 1 {
		t.Fatalf("released one of two: count %d, want 1", f.Count)
	}
	if f, _ := s.Failures(ctx, acct.Key); f.Count != 0 {
		t.Fatalf("reset counter still counts %d", f.Count)
	}
	// A release never goes below zero, and never touches a counter whose
	// window started after the reservation.
	later := t0.Add(2 * time.Minute)
	reserve(t, s, later, ip)
	if err := s.SettleAttempts(ctx, t0, []string{ip.Key, ip.Key, "ip:never"}, nil); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.Failures(ctx, ip.Key); f.Count != 1 {
		t.Fatalf("a release reached into a newer window: count %d", f.Count)
	}
	if err := s.SettleAttempts(ctx, t0, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func testFailuresCountAndWindow(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	if f, err := s.Failures(ctx, "k"); err != nil || f.Count != 0 || !f.Since.IsZero() {
		t.Fatalf("an unknown counter: %+v %v", f, err)
	}
	for i := 1; i <= 3; i++ {
		f, err := s.RecordFailure(ctx, "k", t0.Add(time.Duration(i)*time.Second), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if f.Count != i || !f.Since.Equal(t0.Add(time.Second)) || !f.Last.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("failure %d: %+v", i, f)
		}
	}
	got, err := s.Failures(ctx, "k")
	if err != nil || got.Count != 3 || !got.Last.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("Failures: %+v %v", got, err)
	}
	if other, _ := s.Failures(ctx, "other"); other.Count != 0 {
		t.Fatal("counters are independent")
	}
	// Past the window the counter starts again.
	later := t0.Add(2 * time.Minute)
	f, err := s.RecordFailure(ctx, "k", later, time.Minute)
	if err != nil || f.Count != 1 || !f.Since.Equal(later) {
		t.Fatalf("after the window: %+v %v", f, err)
	}
	if err := s.ResetFailures(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.Failures(ctx, "k"); f.Count != 0 {
		t.Fatalf("after reset: %+v", f)
	}
	if err := s.ResetFailures(ctx, "never-seen"); err != nil {
		t.Fatalf("resetting an unknown counter: %v", err)
	}
	// Purge forgets counters idle for a day.
	if _, err := s.RecordFailure(ctx, "old", t0.Add(-48*time.Hour), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordFailure(ctx, "fresh", t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.Failures(ctx, "old"); f.Count != 0 {
		t.Fatal("an idle counter survived the purge")
	}
	if f, _ := s.Failures(ctx, "fresh"); f.Count != 1 {
		t.Fatal("a fresh counter was purged")
	}
}

func testFailuresConcurrent(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	ctx := t.Context()
	now := time.Now().UTC()
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]bool{}
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := s.RecordFailure(ctx, "ip:203.0.113.9", now, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[f.Count] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if f, _ := s.Failures(ctx, "ip:203.0.113.9"); f.Count != 40 {
		t.Fatalf("40 concurrent failures counted as %d", f.Count)
	}
	if len(seen) != 40 {
		t.Fatalf("each increment must return its own count; saw %d distinct", len(seen))
	}
}
