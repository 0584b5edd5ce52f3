package simplejwt_test

import (
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/simplejwt"
)

func TestRefresh(t *testing.T) {
	for _, path := range []string{"/api/v1/token/refresh/", "/api/v1/token/refresh"} {
		t.Run(path, func(t *testing.T) {
			e := newEnv(t, simplejwt.DefaultConfig)
			rt, at := e.obtain()
			e.Clock.Advance(time.Minute)
			before := e.user(e.aliceID).LastLoginAt

			r := e.post(path, js(map[string]string{"refresh": rt}))
			at2 := r.Str(t, "access")
			// Rotation is off by default: the access token alone.
			want(t, r, 200, `{"access":"`+at2+`"}`)
			if at2 == at {
				t.Fatal("refresh returned the same access token")
			}
			c1, _ := e.VerifyWithJWKS(at)
			c2, h := e.VerifyWithJWKS(at2)
			if c2["sid"] != c1["sid"] || c2["user_id"] != e.aliceID || c2["token_type"] != "access" || h.ExtraHeaders["typ"] != "JWT" {
				t.Fatalf("refreshed token %v", c2)
			}
			if d := num(t, c2["exp"]) - num(t, c2["iat"]); d != int64((7 * day).Seconds()) {
				t.Fatalf("access lifetime %ds", d)
			}

			u := e.user(e.aliceID)
			if u.LastRefreshAt.IsZero() || u.LastRefreshAt.Before(before) || !u.LastLoginAt.Equal(before) {
				t.Fatalf("activity after refresh: login %v, refresh %v", u.LastLoginAt, u.LastRefreshAt)
			}
			if n := e.metric("tokend_user_activity_total", `dialect="simplejwt"`, `kind="refresh"`); n != 1 {
				t.Fatalf("refresh activity metric %v", n)
			}
			if n := e.metric("tokend_tokens_issued_total", `dialect="simplejwt"`, `grant="refresh_token"`); n != 1 {
				t.Fatalf("issued metric %v", n)
			}

			// Without rotation the same refresh token keeps working, and an
			// "access" field is ignored, whatever it holds.
			for _, body := range []string{
				js(map[string]any{"refresh": rt, "access": at}),
				js(map[string]any{"refresh": rt, "access": 5}),
				url.Values{"refresh": {rt}, "access": {"x"}}.Encode(),
			} {
				ct := jsonType
				if !strings.HasPrefix(body, "{") {
					ct = formType
				}
				r := e.Do("POST", path, ct, body)
				if r.Status != 200 {
					t.Fatalf("%d %s", r.Status, r.Body)
				}
				wantKeys(t, r.JSON(t), "access")
			}
			if n := e.metric("tokend_user_activity_total", `dialect="simplejwt"`, `kind="refresh"`); n != 4 {
				t.Fatalf("refresh activity metric %v", n)
			}
		})
	}
}

func TestRefreshRefused(t *testing.T) {
	e := newEnv(t, simplejwt.DefaultConfig)
	rt, at := e.obtain()

	tampered := func(tok string) string {
		parts := strings.Split(tok, ".")
		b := []byte(parts[1])
		b[10] ^= 1
		parts[1] = string(b)
		return strings.Join(parts, ".")
	}
	// A refresh token of the standard endpoints (opaque) is not this dialect's.
	publicID, _ := e.AddClient(true, "", nil, tokend.GrantPassword, tokend.GrantRefreshToken)
	r := e.Do("POST", "/oauth2/token", formType, url.Values{
		"grant_type": {"password"}, "username": {aliceName}, "password": {alicePassword}, "client_id": {publicID},
	}.Encode())
	if r.Status != 200 {
		t.Fatalf("oauth login: %d %s", r.Status, r.Body)
	}
	oauthRT, oauthAT := r.Str(t, "refresh_token"), r.Str(t, "access_token")

	for _, c := range []struct{ name, tok, want string }{
		{"access token as refresh", at, wrongType},
		{"tampered refresh token", tampered(rt), tokenNotValid},
		{"truncated refresh token", rt[:len(rt)-4], tokenNotValid},
		{"refresh token of oauth", oauthRT, tokenNotValid},
		// An OAuth access token has no token_type: not this API's at all.
		{"access token of oauth", oauthAT, tokenNotValid},
		{"refresh token with a suffix", rt + "x", tokenNotValid},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantToken(t, e.refresh(c.tok), c.want)
		})
	}
	if u := e.user(e.aliceID); !u.LastRefreshAt.IsZero() {
		t.Fatal("a refused refresh recorded a refresh")
	}
	// And the rightful token still works.
	if r := e.refresh(rt); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}

	t.Run("expired", func(t *testing.T) {
		e := newEnv(t, simplejwt.DefaultConfig)
		rt, _ := e.obtain()
		e.Clock.Advance(30*day - time.Minute)
		if r := e.refresh(rt); r.Status != 200 {
			t.Fatalf("refresh token must live 30 days: %d %s", r.Status, r.Body)
		}
		e.Clock.Advance(2 * time.Minute)
		wantToken(t, e.refresh(rt), tokenNotValid)
	})
	t.Run("disabled user", func(t *testing.T) {
		e := newEnv(t, simplejwt.DefaultConfig)
		rt, at := e.obtain()
		if err := e.Store.DisableUser(t.Context(), e.aliceID, time.Now()); err != nil {
			t.Fatal(err)
		}
		wantToken(t, e.refresh(rt), blacklisted)
		wantToken(t, e.verify(at), blacklisted)
		wantToken(t, e.verify(rt), blacklisted)
		if e.introspect(at)["active"] != false {
			t.Fatal("access token of a disabled user is active")
		}
	})
	t.Run("revoked through /oauth2/revoke", func(t *testing.T) {
		e := newEnv(t, simplejwt.DefaultConfig)
		rt, at := e.obtain()
		e.revoke(rt)
		wantToken(t, e.refresh(rt), blacklisted)
		wantToken(t, e.verify(at), blacklisted)
	})
}

func TestRotation(t *testing.T) {
	cfg := simplejwt.DefaultConfig
	cfg.Rotate = true
	e := newEnv(t, cfg)
	rt0, at0 := e.obtain()

	r := e.refresh(rt0)
	rt1, at1 := r.Str(t, "refresh"), r.Str(t, "access")
	want(t, r, 200, `{"access":"`+at1+`","refresh":"`+rt1+`"}`)
	if rt1 == rt0 {
		t.Fatal("rotation must return a new refresh token")
	}
	c0, _ := e.VerifyWithJWKSFor(rt0, refreshAud)
	c1, _ := e.VerifyWithJWKSFor(rt1, refreshAud)
	if c1["sid"] != c0["sid"] || num(t, c1["ctr"]) != num(t, c0["ctr"])+1 || c1["token_type"] != "refresh" {
		t.Fatalf("rotated refresh token %v after %v", c1, c0)
	}
	// Only the current generation verifies.
	want(t, e.verify(rt1), 200, `{}`)
	wantToken(t, e.verify(rt0), blacklisted)

	// Within the grace window the previous token gets the current
	// generation (a fresh JWT of it: same session, same counter).
	r = e.refresh(rt0)
	if r.Status != 200 || e.generation(r.Str(t, "refresh")) != e.generation(rt1) {
		t.Fatalf("reuse within grace: %d %s", r.Status, r.Body)
	}
	r = e.refresh(rt1)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	rt2, at2 := r.Str(t, "refresh"), r.Str(t, "access")
	if n := e.metric("tokend_user_activity_total", `dialect="simplejwt"`, `kind="refresh"`); n != 3 {
		t.Fatalf("refresh activity metric %v", n)
	}

	// After the grace window a reused token is theft: the whole session ends.
	e.Clock.Advance(11 * time.Second)
	wantToken(t, e.refresh(rt1), blacklisted)
	wantToken(t, e.refresh(rt2), blacklisted)
	for _, at := range []string{at0, at1, at2} {
		wantToken(t, e.verify(at), blacklisted)
		if e.introspect(at)["active"] != false {
			t.Fatal("access tokens of a session revoked for reuse must be inactive")
		}
	}
	if n := e.metric("tokend_failures_total", `dialect="simplejwt"`, `reason="refresh_reuse"`); n != 1 {
		t.Fatalf("reuse metric %v", n)
	}
	// A new login is unaffected.
	rt, _ := e.obtain()
	if r := e.refresh(rt); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
}

func TestRotationConcurrent(t *testing.T) {
	cfg := simplejwt.DefaultConfig
	cfg.Rotate = true
	e := newEnv(t, cfg)
	rt0, _ := e.obtain()
	const n = 8
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := e.refresh(rt0)
			if r.Status == 200 {
				got[i] = r.Str(t, "refresh")
			}
		})
	}
	wg.Wait()
	// Exactly one request rotates; every other one, within the grace
	// window, gets that same next generation.
	next := e.generation(rt0)
	next.ctr++
	for i, rt := range got {
		if rt == "" {
			t.Fatalf("request %d failed", i)
		}
		if g := e.generation(rt); g != next {
			t.Fatalf("request %d got generation %+v, want %+v", i, g, next)
		}
	}
}

func TestVerify(t *testing.T) {
	e := newEnv(t, simplejwt.DefaultConfig)
	rt, at := e.obtain()
	for _, path := range []string{"/api/v1/token/verify/", "/api/v1/token/verify"} {
		for name, tok := range map[string]string{"access": at, "refresh": rt} {
			t.Run(name+" "+path, func(t *testing.T) {
				want(t, e.post(path, js(map[string]string{"token": tok})), 200, `{}`)
				want(t, e.Do("POST", path, formType, url.Values{"token": {tok}}.Encode()), 200, `{}`)
			})
		}
	}

	t.Run("tokens of the standard endpoints are not this dialect's", func(t *testing.T) {
		publicID, _ := e.AddClient(true, "", nil, tokend.GrantPassword, tokend.GrantRefreshToken)
		r := e.Do("POST", "/oauth2/token", formType, url.Values{
			"grant_type": {"password"}, "username": {aliceName}, "password": {alicePassword}, "client_id": {publicID},
		}.Encode())
		wantToken(t, e.verify(r.Str(t, "access_token")), tokenNotValid)
		wantToken(t, e.verify(r.Str(t, "refresh_token")), tokenNotValid)
		r = e.oauth("/oauth2/token", url.Values{"grant_type": {"client_credentials"}})
		wantToken(t, e.verify(r.Str(t, "access_token")), tokenNotValid)
	})
	t.Run("access token revoked through /oauth2/revoke", func(t *testing.T) {
		rt, at := e.obtain()
		e.revoke(at)
		wantToken(t, e.verify(at), blacklisted)
		if e.introspect(at)["active"] != false {
			t.Fatal("revoked access token is active")
		}
		// Revoking an access token leaves its session alone.
		want(t, e.verify(rt), 200, `{}`)
	})
	t.Run("expiry", func(t *testing.T) {
		e := newEnv(t, simplejwt.DefaultConfig)
		rt, at := e.obtain()
		e.Clock.Advance(7*day - time.Minute)
		want(t, e.verify(at), 200, `{}`)
		e.Clock.Advance(2 * time.Minute)
		wantToken(t, e.verify(at), tokenNotValid)
		if e.introspect(at)["active"] != false {
			t.Fatal("expired access token is active")
		}
		want(t, e.verify(rt), 200, `{}`)
		e.Clock.Advance(23 * day)
		wantToken(t, e.verify(rt), tokenNotValid)
	})
}

func TestBlacklist(t *testing.T) {
	for _, path := range []string{"/api/v1/token/blacklist/", "/api/v1/token/blacklist"} {
		t.Run(path, func(t *testing.T) {
			e := newEnv(t, simplejwt.DefaultConfig)
			rt, at := e.obtain()
			// Tokens of another login survive.
			otherRT, otherAT := e.obtain()

			want(t, e.post(path, js(map[string]string{"refresh": rt})), 200, `{}`)
			wantToken(t, e.refresh(rt), blacklisted)
			wantToken(t, e.verify(at), blacklisted)
			wantToken(t, e.verify(rt), blacklisted)
			if e.introspect(at)["active"] != false || e.introspect(rt)["active"] != false {
				t.Fatal("tokens of a blacklisted session must introspect inactive")
			}
			// Already blacklisted.
			wantToken(t, e.post(path, js(map[string]string{"refresh": rt})), blacklisted)

			want(t, e.verify(otherAT), 200, `{}`)
			if r := e.refresh(otherRT); r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		})
	}
	t.Run("access token", func(t *testing.T) {
		e := newEnv(t, simplejwt.DefaultConfig)
		rt, at := e.obtain()
		wantToken(t, e.blacklist(at), wrongType)
		want(t, e.verify(at), 200, `{}`)
		if r := e.refresh(rt); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("refresh token of oauth", func(t *testing.T) {
		e := newEnv(t, simplejwt.DefaultConfig)
		publicID, _ := e.AddClient(true, "", nil, tokend.GrantPassword, tokend.GrantRefreshToken)
		r := e.Do("POST", "/oauth2/token", formType, url.Values{
			"grant_type": {"password"}, "username": {aliceName}, "password": {alicePassword}, "client_id": {publicID},
		}.Encode())
		wantToken(t, e.blacklist(r.Str(t, "refresh_token")), tokenNotValid)
		if e.introspect(r.Str(t, "access_token"))["active"] != true {
			t.Fatal("blacklist ended a session of the standard endpoints")
		}
	})
	t.Run("expired", func(t *testing.T) {
		e := newEnv(t, simplejwt.DefaultConfig)
		rt, _ := e.obtain()
		e.Clock.Advance(30*day + time.Second)
		wantToken(t, e.blacklist(rt), tokenNotValid)
	})
	t.Run("rotated away", func(t *testing.T) {
		cfg := simplejwt.DefaultConfig
		cfg.Rotate = true
		e := newEnv(t, cfg)
		rt0, _ := e.obtain()
		rt1 := e.refresh(rt0).Str(t, "refresh")
		wantToken(t, e.blacklist(rt0), blacklisted)
		want(t, e.blacklist(rt1), 200, `{}`)
		// The grace window does not bring a blacklisted session back.
		wantToken(t, e.refresh(rt0), blacklisted)
	})
}
