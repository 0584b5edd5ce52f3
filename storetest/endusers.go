package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

// The end users of a client app are bounded (tokend.EndUserQuota): a cap on
// how many, a rate of creation, both held under concurrency.

// newEndUser is an end user of clientID created at at, as the engine makes them.
func newEndUser(clientID string, at time.Time) *tokend.User {
	id := newID()
	return &tokend.User{ID: id, Username: id, ClientID: clientID, CreatedAt: at}
}

// createEndUser creates an end user within q and returns the store's refusal.
func createEndUser(t *testing.T, s tokend.Store, clientID string, at time.Time, q tokend.EndUserQuota) *tokend.EndUserRefusal {
	t.Helper()
	u := newEndUser(clientID, at)
	r, err := s.CreateEndUser(t.Context(), u, q)
	must(t, err, "create end user")
	if r == nil {
		wantEqual(t, "created end user", getUser(t, s, u.ID), u)
	} else if _, err := s.UserByID(t.Context(), u.ID); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Fatalf("a refused end user was stored (%v)", err)
	}
	return r
}

func countEndUsers(t *testing.T, s tokend.Store, clientID string) int {
	t.Helper()
	l, err := s.ListUsers(t.Context(), tokend.UserFilter{ClientID: clientID})
	must(t, err, "list end users")
	return len(l)
}

func testEndUserCap(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	app := createClient(t, s, newClient("app")).ID
	other := createClient(t, s, newClient("other")).ID
	at := now()
	q := tokend.EndUserQuota{Max: 3}
	// An end user created otherwise (CreateUser) counts too.
	createUser(t, s, newUser("made-by-hand", app))
	for i := range 2 {
		if r := createEndUser(t, s, app, at, q); r != nil {
			t.Fatalf("end user %d of a cap of 3: refused %+v", i+2, r)
		}
	}
	for range 2 {
		if r := createEndUser(t, s, app, at, q); r == nil || !r.Full {
			t.Fatalf("end user past the cap: refusal %+v, want Full", r)
		}
	}
	if n := countEndUsers(t, s, app); n != 3 {
		t.Fatalf("%d end users, want 3", n)
	}
	// The cap is per app; a larger cap lets more in; none means none.
	if r := createEndUser(t, s, other, at, q); r != nil {
		t.Fatalf("another app's first end user refused: %+v", r)
	}
	if r := createEndUser(t, s, app, at, tokend.EndUserQuota{Max: 4}); r != nil {
		t.Fatalf("end user under a raised cap refused: %+v", r)
	}
	if r := createEndUser(t, s, app, at, tokend.EndUserQuota{}); r != nil {
		t.Fatalf("end user without a cap refused: %+v", r)
	}
	if n := countEndUsers(t, s, app); n != 5 {
		t.Fatalf("%d end users, want 5", n)
	}
	if _, err := s.CreateEndUser(t.Context(), newEndUser("", at), q); tokend.ErrorCode(err) != tokend.EINVALID {
		t.Fatalf("end user of no app: %v, want EINVALID", err)
	}
}

// concurrentEndUsers creates n end users of app at once and returns how
// many were created and the refusals.
func concurrentEndUsers(t *testing.T, s tokend.Store, app string, n int, at time.Time, q tokend.EndUserQuota) (int, []*tokend.EndUserRefusal) {
	t.Helper()
	refusals := make([]*tokend.EndUserRefusal, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			refusals[i], errs[i] = s.CreateEndUser(t.Context(), newEndUser(app, at), q)
		})
	}
	close(start)
	wg.Wait()
	created := 0
	var refused []*tokend.EndUserRefusal
	for i, err := range errs {
		must(t, err, fmt.Sprintf("concurrent end user %d", i))
		if refusals[i] == nil {
			created++
		} else {
			refused = append(refused, refusals[i])
		}
	}
	return created, refused
}

func testEndUserCapConcurrent(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	app := createClient(t, s, newClient("app")).ID
	at := now()
	q := tokend.EndUserQuota{Max: 10}
	for range q.Max - 1 {
		createEndUser(t, s, app, at, q)
	}
	created, refused := concurrentEndUsers(t, s, app, 50, at, q)
	if created != 1 {
		t.Fatalf("%d of 50 concurrent creations at the cap less one succeeded, want exactly 1", created)
	}
	for _, r := range refused {
		if !r.Full {
			t.Fatalf("refusal %+v, want Full", r)
		}
	}
	if n := countEndUsers(t, s, app); n != q.Max {
		t.Fatalf("%d end users, want the cap, %d", n, q.Max)
	}
}

func testEndUserRate(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	app := createClient(t, s, newClient("app")).ID
	other := createClient(t, s, newClient("other")).ID
	t0 := now()
	q := tokend.EndUserQuota{Max: 5, Rate: 3, Window: time.Minute}
	for i := range 3 {
		if r := createEndUser(t, s, app, t0.Add(time.Duration(i)*time.Second), q); r != nil {
			t.Fatalf("end user %d of a rate of 3: refused %+v", i+1, r)
		}
	}
	// The fourth within the minute waits until the first leaves the window.
	r := createEndUser(t, s, app, t0.Add(10*time.Second), q)
	if r == nil || r.Full || !r.RetryAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("end user past the rate: refusal %+v, want RetryAt %v", r, t0.Add(time.Minute))
	}
	if r := createEndUser(t, s, app, t0.Add(time.Minute-time.Microsecond), q); r == nil {
		t.Fatal("end user created before the window moved on")
	}
	// The rate is per app.
	if r := createEndUser(t, s, other, t0.Add(10*time.Second), q); r != nil {
		t.Fatalf("another app's end user refused: %+v", r)
	}
	// A refusal by rate counted nothing against the cap: 3 + 2 fit.
	for i := range 2 {
		if r := createEndUser(t, s, app, t0.Add(time.Minute+time.Duration(i)*time.Second), q); r != nil {
			t.Fatalf("end user %d after the window moved on: refused %+v", i+4, r)
		}
	}
	if r := createEndUser(t, s, app, t0.Add(time.Hour), q); r == nil || !r.Full {
		t.Fatalf("end user past the cap: refusal %+v, want Full", r)
	}
	if n := countEndUsers(t, s, app); n != 5 {
		t.Fatalf("%d end users, want 5", n)
	}
}

func testEndUserRateConcurrent(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	app := createClient(t, s, newClient("app")).ID
	at := now()
	q := tokend.EndUserQuota{Rate: 7, Window: time.Minute}
	created, refused := concurrentEndUsers(t, s, app, 50, at, q)
	if created != q.Rate {
		t.Fatalf("%d of 50 concurrent creations succeeded, want the rate, %d", created, q.Rate)
	}
	for _, r := range refused {
		if r.Full || !r.RetryAt.Equal(at.Add(time.Minute)) {
			t.Fatalf("refusal %+v, want RetryAt %v", r, at.Add(time.Minute))
		}
	}
}
