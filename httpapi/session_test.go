package httpapi_test

import (
	"sync"
	"testing"
	"time"
)

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t)
	first := e.login()
	rt0 := first.Str(t, "refresh_token")
	at0 := first.Str(t, "access_token")

	before := time.Now().Add(-time.Second)
	r := e.refresh(rt0)
	if r.Status != 200 || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	rt1 := r.Str(t, "refresh_token")
	if rt1 == "" || rt1 == rt0 {
		t.Fatal("rotation must return a new refresh token")
	}
	claims, _ := e.verifyWithJWKS(r.Str(t, "access_token"))
	firstClaims, _ := e.verifyWithJWKS(at0)
	if claims["sid"] != firstClaims["sid"] || claims["sub"] != e.aliceID {
		t.Fatalf("refreshed token claims %v", claims)
	}
	u, _ := e.Store.UserByID(t.Context(), e.aliceID)
	if u.LastRefreshAt.Before(before) {
		t.Fatal("last_refresh_at not recorded")
	}

	// Within the grace window the old token gets the current one.
	r = e.refresh(rt0)
	if r.Status != 200 || r.Str(t, "refresh_token") != rt1 {
		t.Fatalf("reuse within grace: %d %s", r.Status, r.Body)
	}
	// The current token moves on.
	r = e.refresh(rt1)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	rt2 := r.Str(t, "refresh_token")
	at2 := r.Str(t, "access_token")

	// Two generations back is theft even within the window: the session dies.
	wantOAuthError(t, e.refresh(rt0), 400, "invalid_grant")
	wantOAuthError(t, e.refresh(rt2), 400, "invalid_grant")
	if e.introspect(at2)["active"] != false || e.introspect(at0)["active"] != false {
		t.Fatal("access tokens of a revoked session must introspect inactive")
	}
	if r := e.do("GET", "/userinfo", "", "", "", "Authorization", "Bearer "+at2); r.Status != 401 {
		t.Fatalf("userinfo with a token of a revoked session: %d", r.Status)
	}
}

func TestRefreshReuseAfterGrace(t *testing.T) {
	e := newEnv(t)
	rt0 := e.login().Str(t, "refresh_token")
	r := e.refresh(rt0)
	rt1, at1 := r.Str(t, "refresh_token"), r.Str(t, "access_token")
	e.Clock.Advance(11 * time.Second)
	wantOAuthError(t, e.refresh(rt0), 400, "invalid_grant")
	wantOAuthError(t, e.refresh(rt1), 400, "invalid_grant")
	if e.introspect(at1)["active"] != false {
		t.Fatal("theft must revoke the session's access tokens")
	}
}

func TestRefreshGraceOff(t *testing.T) {
	e := newEnv(t, withGrace(0))
	rt0 := e.login().Str(t, "refresh_token")
	rt1 := e.refresh(rt0).Str(t, "refresh_token")
	wantOAuthError(t, e.refresh(rt0), 400, "invalid_grant")
	wantOAuthError(t, e.refresh(rt1), 400, "invalid_grant")
}

func TestRefreshChecks(t *testing.T) {
	e := newEnv(t)
	t.Run("another client", func(t *testing.T) {
		rt := e.login().Str(t, "refresh_token")
		r := e.post("/oauth2/token", vals("grant_type", "refresh_token", "refresh_token", rt), e.basic())
		wantOAuthError(t, r, 400, "invalid_grant")
		// and the rightful client still can
		if r := e.refresh(rt); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		rt := e.login().Str(t, "refresh_token")
		b := []byte(rt)
		b[10] ^= 1
		wantOAuthError(t, e.refresh(string(b)), 400, "invalid_grant")
	})
	t.Run("expired session", func(t *testing.T) {
		e := newEnv(t)
		rt := e.login().Str(t, "refresh_token")
		e.Clock.Advance(25 * time.Hour)
		wantOAuthError(t, e.refresh(rt), 400, "invalid_grant")
	})
	t.Run("disabled user", func(t *testing.T) {
		e := newEnv(t)
		rt := e.login().Str(t, "refresh_token")
		if err := e.Store.DisableUser(t.Context(), e.aliceID, time.Now()); err != nil {
			t.Fatal(err)
		}
		wantOAuthError(t, e.refresh(rt), 400, "invalid_grant")
	})
	t.Run("scope narrowing", func(t *testing.T) {
		e := newEnv(t)
		id, _ := e.addClientScopes(true, []string{"read", "write"}, "password", "refresh_token")
		r := e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword, "client_id", id), "")
		if r.Str(t, "scope") != "read write" {
			t.Fatalf("%s", r.Body)
		}
		rt := r.Str(t, "refresh_token")
		r = e.post("/oauth2/token", vals("grant_type", "refresh_token", "refresh_token", rt, "client_id", id, "scope", "admin"), "")
		wantOAuthError(t, r, 400, "invalid_scope")
		r = e.post("/oauth2/token", vals("grant_type", "refresh_token", "refresh_token", rt, "client_id", id, "scope", "read"), "")
		if r.Status != 200 || r.Str(t, "scope") != "read" {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
}

// concurrentRefresh sends n refreshes of rt at once and returns the
// responses.
func concurrentRefresh(e *env, rt string, n int) []response {
	out := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	body := vals("grant_type", "refresh_token", "refresh_token", rt, "client_id", e.publicID).Encode()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = e.do("POST", "/oauth2/token", form, body, "")
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func TestConcurrentRefreshWithinGrace(t *testing.T) {
	e := newEnv(t)
	rt := e.login().Str(t, "refresh_token")
	got := map[string]int{}
	for _, r := range concurrentRefresh(e, rt, 50) {
		if r.Status != 200 {
			t.Fatalf("a concurrent refresh failed: %d %s", r.Status, r.Body)
		}
		got[r.Str(t, "refresh_token")]++
	}
	if len(got) != 1 {
		t.Fatalf("concurrent refreshes ended with %d different refresh tokens, want 1", len(got))
	}
	for next := range got {
		if next == rt {
			t.Fatal("the token was not rotated")
		}
		if r := e.refresh(next); r.Status != 200 {
			t.Fatalf("the new token does not work: %d %s", r.Status, r.Body)
		}
	}
}

func TestConcurrentRefreshGraceOff(t *testing.T) {
	e := newEnv(t, withGrace(0))
	rt := e.login().Str(t, "refresh_token")
	ok := 0
	for _, r := range concurrentRefresh(e, rt, 50) {
		switch r.Status {
		case 200:
			ok++
		case 400:
			wantOAuthError(t, r, 400, "invalid_grant")
		default:
			t.Fatalf("unexpected %d %s", r.Status, r.Body)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 50 concurrent refreshes succeeded with grace 0, want exactly 1", ok)
	}
}
