package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
)

func TestIntrospection(t *testing.T) {
	e := newEnv(t)
	login := e.login()
	at, rt := login.Str(t, "access_token"), login.Str(t, "refresh_token")

	m := e.introspect(at)
	if m["active"] != true || m["sub"] != e.aliceID || m["client_id"] != e.publicID || m["username"] != "alice" ||
		m["token_type"] != "Bearer" || m["iss"] != "http://tokend.test" || m["jti"] == nil || m["exp"] == nil || m["sid"] == nil {
		t.Fatalf("introspection %v", m)
	}

	t.Run("refresh token, by its own client", func(t *testing.T) {
		r := e.post("/oauth2/introspect", vals("token", rt, "client_id", e.publicID), "")
		// a public client cannot authenticate, so it cannot introspect
		wantOAuthError(t, r, 401, "invalid_client")
	})
	t.Run("refresh token, by a client it was not issued to", func(t *testing.T) {
		if m := e.introspect(rt); len(m) != 1 || m["active"] != false {
			t.Fatalf("%v", m)
		}
	})
	t.Run("refresh token of a confidential client", func(t *testing.T) {
		r := e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword), e.basic())
		m := e.introspect(r.Str(t, "refresh_token"))
		if m["active"] != true || m["token_use"] != "refresh_token" || m["sub"] != e.aliceID {
			t.Fatalf("%v", m)
		}
	})

	inactive := map[string]string{
		"garbage":          "not a token",
		"empty-ish":        " ",
		"alg none":         "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.",
		"tampered payload": tamper(at),
		"truncated":        at[:len(at)-5],
		"oversized":        strings.Repeat("a", 9000),
		"bad refresh":      "rt1_AAAA",
	}
	for name, tok := range inactive {
		t.Run(name, func(t *testing.T) {
			m := e.introspect(tok)
			if len(m) != 1 || m["active"] != false {
				t.Fatalf("want exactly {\"active\": false}, got %v", m)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		e := newEnv(t)
		at := e.login().Str(t, "access_token")
		e.Clock.Advance(16 * time.Minute)
		if m := e.introspect(at); len(m) != 1 || m["active"] != false {
			t.Fatalf("%v", m)
		}
	})
	t.Run("errors", func(t *testing.T) {
		wantOAuthError(t, e.post("/oauth2/introspect", vals("token", at), ""), 401, "invalid_client")
		wantOAuthError(t, e.post("/oauth2/introspect", vals("token", at), e.clientID+":wrong"), 401, "invalid_client")
		wantOAuthError(t, e.post("/oauth2/introspect", vals(), e.basic()), 400, "invalid_request")
		wantOAuthError(t, e.do("POST", "/oauth2/introspect", "text/plain", "token=x", e.basic()), 400, "invalid_request")
	})
}

// tamper flips a character of a JWT's payload.
func tamper(jwt string) string {
	parts := strings.Split(jwt, ".")
	p := []byte(parts[1])
	if p[5] == 'A' {
		p[5] = 'B'
	} else {
		p[5] = 'A'
	}
	parts[1] = string(p)
	return strings.Join(parts, ".")
}

func TestRevocation(t *testing.T) {
	t.Run("access token", func(t *testing.T) {
		e := newEnv(t)
		login := e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword), e.basic())
		at, rt := login.Str(t, "access_token"), login.Str(t, "refresh_token")
		r := e.post("/oauth2/revoke", vals("token", at, "token_type_hint", "access_token"), e.basic())
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if e.introspect(at)["active"] != false {
			t.Fatal("a revoked access token must introspect inactive")
		}
		if r := e.do("GET", "/userinfo", "", "", "", "Authorization", "Bearer "+at); r.Status != 401 {
			t.Fatalf("userinfo accepted a revoked token: %d", r.Status)
		}
		// The session itself goes on.
		if r := e.post("/oauth2/token", vals("grant_type", "refresh_token", "refresh_token", rt), e.basic()); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("refresh token ends the session", func(t *testing.T) {
		e := newEnv(t)
		login := e.login()
		at, rt := login.Str(t, "access_token"), login.Str(t, "refresh_token")
		if r := e.post("/oauth2/revoke", vals("token", rt, "client_id", e.publicID), ""); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		wantOAuthError(t, e.refresh(rt), 400, "invalid_grant")
		if e.introspect(at)["active"] != false {
			t.Fatal("the session's access token must turn inactive")
		}
	})
	t.Run("client token", func(t *testing.T) {
		e := newEnv(t)
		at := e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.basic()).Str(t, "access_token")
		if r := e.post("/oauth2/revoke", vals("token", at), e.basic()); r.Status != 200 {
			t.Fatalf("%d", r.Status)
		}
		if e.introspect(at)["active"] != false {
			t.Fatal("revoked")
		}
	})
	t.Run("another client's token", func(t *testing.T) {
		e := newEnv(t)
		at := e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.basic()).Str(t, "access_token")
		otherID, otherSecret := e.addClient(false, tokend.GrantClientCredentials)
		r := e.post("/oauth2/revoke", vals("token", at), otherID+":"+otherSecret)
		wantOAuthError(t, r, 400, "unauthorized_client")
		if e.introspect(at)["active"] != true {
			t.Fatal("a refused revocation must leave the token alone")
		}
		rt := e.login().Str(t, "refresh_token")
		wantOAuthError(t, e.post("/oauth2/revoke", vals("token", rt), otherID+":"+otherSecret), 400, "unauthorized_client")
	})
	t.Run("unknown and invalid tokens get 200", func(t *testing.T) {
		e := newEnv(t)
		for _, tok := range []string{"nonsense", "rt1_" + strings.Repeat("A", 75), "eyJhbGciOiJub25lIn0.e30."} {
			if r := e.post("/oauth2/revoke", vals("token", tok), e.basic()); r.Status != 200 {
				t.Fatalf("%q: %d %s", tok, r.Status, r.Body)
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		e := newEnv(t)
		wantOAuthError(t, e.post("/oauth2/revoke", vals("token", "x"), ""), 401, "invalid_client")
		wantOAuthError(t, e.post("/oauth2/revoke", vals("token", "x"), e.clientID+":bad"), 401, "invalid_client")
		wantOAuthError(t, e.post("/oauth2/revoke", vals(), e.basic()), 400, "invalid_request")
		r := e.do("GET", "/oauth2/revoke", "", "", "")
		if r.Status != 405 {
			t.Fatalf("%d", r.Status)
		}
	})
}

func TestUserinfo(t *testing.T) {
	e := newEnv(t)
	at := e.login().Str(t, "access_token")
	for _, scheme := range []string{"Bearer ", "bearer "} {
		r := e.do("GET", "/userinfo", "", "", "", "Authorization", scheme+at)
		m := r.JSON(t)
		if r.Status != 200 || m["sub"] != e.aliceID || m["preferred_username"] != "alice" || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	if r := e.do("POST", "/userinfo", "", "", "", "Authorization", "Bearer "+at); r.Status != 200 {
		t.Fatalf("POST /userinfo: %d", r.Status)
	}
	cc := e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.basic()).Str(t, "access_token")
	if r := e.do("GET", "/userinfo", "", "", "", "Authorization", "Bearer "+cc); r.Status != 200 || r.Str(t, "sub") != e.clientID {
		t.Fatalf("client token: %d %s", r.Status, r.Body)
	}
	bad := map[string]string{
		"missing":       "",
		"basic scheme":  "Basic " + at,
		"garbage":       "Bearer garbage",
		"tampered":      "Bearer " + tamper(at),
		"refresh token": "Bearer " + e.login().Str(t, "refresh_token"),
		"empty bearer":  "Bearer ",
	}
	for name, h := range bad {
		t.Run(name, func(t *testing.T) {
			var r response
			if h == "" {
				r = e.do("GET", "/userinfo", "", "", "")
			} else {
				r = e.do("GET", "/userinfo", "", "", "", "Authorization", h)
			}
			if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%d %v %s", r.Status, r.Header, r.Body)
			}
			if r.Str(t, "error") != "invalid_token" {
				t.Fatalf("%s", r.Body)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		e := newEnv(t)
		at := e.login().Str(t, "access_token")
		e.Clock.Advance(15*time.Minute + time.Second)
		if r := e.do("GET", "/userinfo", "", "", "", "Authorization", "Bearer "+at); r.Status != 401 {
			t.Fatalf("%d", r.Status)
		}
	})
	t.Run("disabled user", func(t *testing.T) {
		e := newEnv(t)
		at := e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword), e.basic()).Str(t, "access_token")
		if err := e.Store.DisableUser(t.Context(), e.aliceID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if r := e.do("GET", "/userinfo", "", "", "", "Authorization", "Bearer "+at); r.Status != 401 {
			t.Fatalf("%d", r.Status)
		}
		if e.introspect(at)["active"] != false {
			t.Fatal("disabling a user ends their sessions")
		}
	})
}
