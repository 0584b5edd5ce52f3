package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	for name, send := range map[string]func() response{
		"client_secret_basic": func() response {
			return e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.basic())
		},
		"client_secret_post": func() response {
			return e.post("/oauth2/token", vals("grant_type", "client_credentials", "client_id", e.clientID, "client_secret", e.clientSecret), "")
		},
		"json body": func() response {
			b, _ := json.Marshal(map[string]string{"grant_type": "client_credentials", "client_id": e.clientID, "client_secret": e.clientSecret})
			return e.do("POST", "/oauth2/token", "application/json; charset=utf-8", string(b), "")
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := send()
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
				t.Fatalf("cache headers: %v", r.Header)
			}
			m := r.JSON(t)
			if m["token_type"] != "Bearer" || m["expires_in"] != float64(900) {
				t.Fatalf("response %s", r.Body)
			}
			if _, ok := m["refresh_token"]; ok {
				t.Fatal("client_credentials must not issue a refresh token (RFC 6749 §4.4.3)")
			}
			claims, h := e.verifyWithJWKS(m["access_token"].(string))
			if h.ExtraHeaders["typ"] != "at+jwt" || h.Algorithm != "ES256" || h.KeyID == "" {
				t.Fatalf("header %+v", h)
			}
			if claims["sub"] != e.clientID || claims["client_id"] != e.clientID {
				t.Fatalf("claims %v", claims)
			}
			for _, c := range []string{"iss", "aud", "exp", "iat", "jti"} {
				if _, ok := claims[c]; !ok {
					t.Fatalf("claim %s missing: %v", c, claims)
				}
			}
			if _, ok := claims["sid"]; ok {
				t.Fatal("a client token belongs to no session")
			}
		})
	}
}

func TestScopes(t *testing.T) {
	e := newEnv(t)
	id, sec := e.addClientScopes(false, []string{"read", "write"}, tokend.GrantClientCredentials)
	basic := id + ":" + sec
	cases := []struct {
		scope, want string
		status      int
	}{
		{"", "read write", 200},
		{"read", "read", 200},
		{"write read read", "write read", 200},
		{"admin", "", 400},
		{"read admin", "", 400},
		{"re\"ad", "", 400},
	}
	for _, c := range cases {
		t.Run(c.scope, func(t *testing.T) {
			r := e.post("/oauth2/token", vals("grant_type", "client_credentials", "scope", c.scope), basic)
			if c.status != 200 {
				wantOAuthError(t, r, 400, "invalid_scope")
				return
			}
			if r.Status != 200 || r.Str(t, "scope") != c.want {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			claims, _ := e.verifyWithJWKS(r.Str(t, "access_token"))
			if claims["scope"] != c.want {
				t.Fatalf("scope claim %v", claims["scope"])
			}
		})
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	e := newEnv(t)
	ccOnlyID, ccOnlySecret := e.addClient(false, tokend.GrantClientCredentials)
	noCCID, noCCSecret := e.addClient(false, tokend.GrantPassword)
	disabledID, disabledSecret := e.addClient(false, tokend.GrantClientCredentials)
	if err := e.Store.DisableClient(t.Context(), disabledID); err != nil {
		t.Fatal(err)
	}
	cc := vals("grant_type", "client_credentials")
	big := strings.Repeat("a", 70<<10)
	cases := []struct {
		name        string
		contentType string
		body        string
		basic       string
		status      int
		code        string
		wwwAuth     bool
	}{
		{"no grant_type", form, "", e.basic(), 400, "invalid_request", false},
		{"unknown grant", form, "grant_type=implicit", e.basic(), 400, "unsupported_grant_type", false},
		{"authorization_code unsupported", form, "grant_type=authorization_code&code=x", e.basic(), 400, "unsupported_grant_type", false},
		{"wrong secret basic", form, cc.Encode(), e.clientID + ":nope", 401, "invalid_client", true},
		{"wrong secret post", form, vals("grant_type", "client_credentials", "client_id", e.clientID, "client_secret", "nope").Encode(), "", 401, "invalid_client", false},
		{"unknown client", form, cc.Encode(), "9f1c1a7e-0000-4000-8000-000000000000:x", 401, "invalid_client", true},
		{"no client at all", form, cc.Encode(), "", 401, "invalid_client", false},
		{"empty secret", form, vals("grant_type", "client_credentials", "client_id", e.clientID, "client_secret", "").Encode(), "", 401, "invalid_client", false},
		{"public client cannot use client_credentials", form, vals("grant_type", "client_credentials", "client_id", e.publicID).Encode(), "", 401, "invalid_client", false},
		{"disabled client", form, cc.Encode(), disabledID + ":" + disabledSecret, 401, "invalid_client", true},
		{"two auth methods", form, vals("grant_type", "client_credentials", "client_secret", e.clientSecret).Encode(), e.basic(), 400, "invalid_request", false},
		{"client_id differs from basic", form, vals("grant_type", "client_credentials", "client_id", ccOnlyID).Encode(), e.basic(), 400, "invalid_request", false},
		{"duplicate parameter", form, "grant_type=client_credentials&grant_type=password", e.basic(), 400, "invalid_request", false},
		{"grant not allowed", form, cc.Encode(), noCCID + ":" + noCCSecret, 400, "unauthorized_client", false},
		{"password grant not allowed", form, vals("grant_type", "password", "username", "alice", "password", alicePassword).Encode(), ccOnlyID + ":" + ccOnlySecret, 400, "unauthorized_client", false},
		{"refresh grant not allowed", form, vals("grant_type", "refresh_token", "refresh_token", "x").Encode(), ccOnlyID + ":" + ccOnlySecret, 400, "unauthorized_client", false},
		{"wrong password", form, vals("grant_type", "password", "username", "alice", "password", "wrong").Encode(), e.basic(), 400, "invalid_grant", false},
		{"unknown user", form, vals("grant_type", "password", "username", "mallory", "password", "wrong").Encode(), e.basic(), 400, "invalid_grant", false},
		{"missing password", form, vals("grant_type", "password", "username", "alice").Encode(), e.basic(), 400, "invalid_request", false},
		{"missing username", form, vals("grant_type", "password", "password", "x").Encode(), e.basic(), 400, "invalid_request", false},
		{"missing refresh_token", form, vals("grant_type", "refresh_token").Encode(), e.basic(), 400, "invalid_request", false},
		{"garbage refresh_token", form, vals("grant_type", "refresh_token", "refresh_token", "rt1_garbage").Encode(), e.basic(), 400, "invalid_grant", false},
		{"JWT as refresh_token", form, vals("grant_type", "refresh_token", "refresh_token", "eyJhbGciOiJub25lIn0.e30.").Encode(), e.basic(), 400, "invalid_grant", false},
		{"no content type", "", cc.Encode(), e.basic(), 400, "invalid_request", false},
		{"text/plain", "text/plain", cc.Encode(), e.basic(), 400, "invalid_request", false},
		{"malformed JSON", "application/json", `{"grant_type":`, e.basic(), 400, "invalid_request", false},
		{"JSON array", "application/json", `["client_credentials"]`, e.basic(), 400, "invalid_request", false},
		{"JSON number for a string", "application/json", `{"grant_type": 5}`, e.basic(), 400, "invalid_request", false},
		{"JSON trailing data", "application/json", `{"grant_type":"client_credentials"} {}`, e.basic(), 400, "invalid_request", false},
		{"malformed form", form, "grant_type=%zz", e.basic(), 400, "invalid_request", false},
		{"oversized body", form, "grant_type=client_credentials&pad=" + big, e.basic(), 413, "invalid_request", false},
		{"malformed basic header", form, cc.Encode(), "", 401, "invalid_client", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r response
			if c.name == "malformed basic header" {
				r = e.do("POST", "/oauth2/token", form, c.body, "", "Authorization", "Basic !!!notbase64")
			} else {
				r = e.do("POST", "/oauth2/token", c.contentType, c.body, c.basic)
			}
			wantOAuthError(t, r, c.status, c.code)
			if got := r.Header.Get("WWW-Authenticate") != ""; got != c.wwwAuth && c.name != "malformed basic header" {
				t.Fatalf("WWW-Authenticate present=%v, want %v", got, c.wwwAuth)
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Fatal("error responses must not be cached")
			}
		})
	}
	t.Run("wrong method", func(t *testing.T) {
		r := e.do("GET", "/oauth2/token", "", "", "")
		if r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
			t.Fatalf("%d %v", r.Status, r.Header)
		}
		r.JSON(t)
	})
	t.Run("unknown path", func(t *testing.T) {
		r := e.do("GET", "/nope", "", "", "")
		if r.Status != 404 {
			t.Fatalf("%d", r.Status)
		}
		r.JSON(t)
	})
}

func TestPasswordGrant(t *testing.T) {
	e := newEnv(t)
	before := time.Now().Add(-time.Second)
	r := e.login()
	m := r.JSON(t)
	if m["token_type"] != "Bearer" || m["refresh_token"] == "" || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("response %s", r.Body)
	}
	claims, _ := e.verifyWithJWKS(m["access_token"].(string))
	if claims["sub"] != e.aliceID || claims["client_id"] != e.publicID || claims["sid"] == nil || claims["preferred_username"] != "alice" {
		t.Fatalf("claims %v", claims)
	}
	if roles, _ := claims["roles"].([]any); len(roles) != 1 || roles[0] != "ROLE_USER" {
		t.Fatalf("roles %v", claims["roles"])
	}
	u, err := e.Store.UserByID(t.Context(), e.aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if u.LastLoginAt.Before(before) {
		t.Fatalf("last_login_at not recorded: %v", u.LastLoginAt)
	}
	if !u.LastRefreshAt.IsZero() {
		t.Fatal("a login is not a refresh")
	}

	t.Run("confidential client", func(t *testing.T) {
		r := e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword), e.basic())
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("public client sending a secret", func(t *testing.T) {
		r := e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword, "client_id", e.publicID, "client_secret", "x"), "")
		wantOAuthError(t, r, 401, "invalid_client")
	})
	t.Run("unknown user and wrong password look the same", func(t *testing.T) {
		a := e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", "nope", "client_id", e.publicID), "")
		b := e.post("/oauth2/token", vals("grant_type", "password", "username", "nobody", "password", "nope", "client_id", e.publicID), "")
		if a.Status != b.Status || string(a.Body) != string(b.Body) {
			t.Fatalf("responses differ: %d %s / %d %s", a.Status, a.Body, b.Status, b.Body)
		}
	})
	t.Run("disabled user", func(t *testing.T) {
		id := e.AddUser("bob", "pw-of-bob")
		if err := e.Store.DisableUser(t.Context(), id, time.Now()); err != nil {
			t.Fatal(err)
		}
		r := e.post("/oauth2/token", vals("grant_type", "password", "username", "bob", "password", "pw-of-bob", "client_id", e.publicID), "")
		wantOAuthError(t, r, 400, "invalid_grant")
	})
}

// TestNoUserEnumerationByTiming checks that an unknown username costs an
// argon2id hash like a wrong password does. The bound is loose (a factor of
// three between medians): skipping the hash would make the unknown-user
// path a hundred times faster.
func TestNoUserEnumerationByTiming(t *testing.T) {
	real := secret.DefaultParams
	e := newEnv(t, withParams(real))
	hash, err := secret.HashPassword("pw-of-carol", real)
	if err != nil {
		t.Fatal(err)
	}
	u := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: "carol", PasswordHash: hash, CreatedAt: time.Now()}
	if err := e.Store.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	// Alternate the two kinds of request, so that a machine busy with other
	// work slows both alike, and compare medians. The first request warms
	// the hasher up. Seven wrong passwords stay under the lockout (10).
	login := func(user string) time.Duration {
		start := time.Now()
		r := e.post("/oauth2/token", vals("grant_type", "password", "username", user, "password", "wrong", "client_id", e.publicID), "")
		d := time.Since(start)
		if r.Status != 400 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		return d
	}
	login("warm-up")
	var ks, us []time.Duration
	for range 7 {
		ks = append(ks, login("carol"))
		us = append(us, login("nobody"))
	}
	slices.Sort(ks)
	slices.Sort(us)
	known, unknown := ks[3], us[3]
	if unknown*3 < known || known*3 < unknown {
		t.Fatalf("unknown user took %v, wrong password %v: timing reveals which accounts exist", unknown, known)
	}
}
