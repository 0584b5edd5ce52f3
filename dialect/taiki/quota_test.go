package taiki_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/taiki"
)

// Bounded end users: a request for a new end user past the app's cap or
// its creation rate gets Taiki's 429, with Retry-After, and creates
// nothing; tokens for existing end users keep coming.

const (
	capBody  = `{"error":"too_many_requests","error_description":"This API key has reached its limit of Taiki users"}`
	rateBody = `{"error":"too_many_requests","error_description":"Too many new Taiki users for this API key, retry later"}`
)

// newUser asks for a token for a new end user of the production app.
func (e *env) newUser() response {
	e.t.Helper()
	return e.post("/api/token", body("api_key", e.prodID, "api_secret", e.prodSecret))
}

// want429 checks a 429 with body and returns its Retry-After in seconds.
func want429(t *testing.T, r response, body string) int {
	t.Helper()
	wantError(t, r, 429, body)
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	return n
}

func (e *env) endUsers(clientID string) int {
	e.t.Helper()
	l, err := e.Store.ListUsers(context.Background(), tokend.UserFilter{ClientID: clientID})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(l)
}

func TestEndUserCap(t *testing.T) {
	cfg := taiki.DefaultConfig
	cfg.MaxUsersPerApp, cfg.UserRate = 3, 0
	e := newEnv(t, cfg)
	var first string
	for i := range 3 {
		_, uid := wantToken(t, e.newUser())
		if i == 0 {
			first = uid
		}
	}
	for range 2 {
		if n := want429(t, e.newUser(), capBody); n != 3600 {
			t.Fatalf("Retry-After %d at the cap, want 3600", n)
		}
	}
	if n := e.endUsers(e.prodID); n != 3 {
		t.Fatalf("%d end users, want 3", n)
	}
	// An existing end user still gets tokens; another app has its own cap.
	if _, uid := e.issue(first); uid != first {
		t.Fatalf("token for %s came for %s", first, uid)
	}
	wantToken(t, e.post("/api/token", body("api_key", e.sandboxID, "api_secret", e.sandboxSecret)))
}

// TestEndUserCapConcurrent: 50 requests at once for an app one end user
// short of its cap create exactly one.
func TestEndUserCapConcurrent(t *testing.T) {
	cfg := taiki.DefaultConfig
	cfg.MaxUsersPerApp = 10
	e := newEnv(t, cfg)
	for range cfg.MaxUsersPerApp - 1 {
		wantToken(t, e.newUser())
	}
	ok := concurrently(t, e, 50, capBody)
	if ok != 1 {
		t.Fatalf("%d of 50 concurrent requests got a new end user, want exactly 1", ok)
	}
	if n := e.endUsers(e.prodID); n != cfg.MaxUsersPerApp {
		t.Fatalf("%d end users, want the cap, %d", n, cfg.MaxUsersPerApp)
	}
}

// concurrently sends n requests for new end users at once and returns how
// many succeeded; every other one must be a 429 with refusal.
func concurrently(t *testing.T, e *env, n int, refusal string) int {
	t.Helper()
	results := make([]response, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			<-start
			results[i] = e.Do("POST", "/api/token", jsonType, body("api_key", e.prodID, "api_secret", e.prodSecret))
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, r := range results {
		if r.Status == 200 {
			wantToken(t, r)
			ok++
			continue
		}
		want429(t, r, refusal)
	}
	return ok
}

func TestEndUserRate(t *testing.T) {
	cfg := taiki.DefaultConfig
	cfg.UserRate = 3
	e := newEnv(t, cfg)
	for range 3 {
		wantToken(t, e.newUser())
	}
	// The fourth within the minute waits for the first to leave it.
	if n := want429(t, e.newUser(), rateBody); n < 59 || n > 60 {
		t.Fatalf("Retry-After %d, want about 60", n)
	}
	e.Clock.Advance(30 * time.Second)
	if n := want429(t, e.newUser(), rateBody); n < 29 || n > 30 {
		t.Fatalf("Retry-After %d after 30s, want about 30", n)
	}
	if n := e.endUsers(e.prodID); n != 3 {
		t.Fatalf("%d end users, want 3", n)
	}
	e.Clock.Advance(31 * time.Second)
	wantToken(t, e.newUser())
	// The rate is per app.
	for range 3 {
		wantToken(t, e.post("/api/token", body("api_key", e.sandboxID, "api_secret", e.sandboxSecret)))
	}
}

// TestEndUserRateConcurrent: 50 requests at once create exactly the rate.
func TestEndUserRateConcurrent(t *testing.T) {
	cfg := taiki.DefaultConfig
	cfg.UserRate = 7
	e := newEnv(t, cfg)
	if ok := concurrently(t, e, 50, rateBody); ok != cfg.UserRate {
		t.Fatalf("%d of 50 concurrent requests got a new end user, want the rate, %d", ok, cfg.UserRate)
	}
}
