package httpapi_test

import (
	"strings"
	"testing"

	"github.com/tokend/tokend/tokendtest"
)

// TestForgedTokens offers every forged or broken token to every standard
// place that accepts a token; each must be turned away with that place's
// own answer, and no jku or x5u URL may ever be fetched.
func TestForgedTokens(t *testing.T) {
	e := newEnv(t)
	f := e.NewForger()
	login := e.login()
	at, rt := login.Str(t, "access_token"), login.Str(t, "refresh_token")
	forgeries := append(f.Forgeries(at),
		tokendtest.Forgery{Name: "refresh token as access token", Token: rt},
	)
	for _, fg := range forgeries {
		t.Run(fg.Name, func(t *testing.T) {
			if fg.Token != rt {
				if m := e.introspect(fg.Token); len(m) != 1 || m["active"] != false {
					t.Fatalf("introspection: %v", m)
				}
			}
			r := e.do("GET", "/userinfo", "", "", "", "Authorization", "Bearer "+fg.Token)
			if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("userinfo: %d %s", r.Status, r.Body)
			}
			if fg.Token != rt {
				wantOAuthError(t, e.refresh(fg.Token), 400, "invalid_grant")
				if r := e.post("/oauth2/revoke", vals("token", fg.Token), e.basic()); r.Status != 200 {
					t.Fatalf("revoke: %d %s", r.Status, r.Body)
				}
			}
		})
	}
	t.Run("access token as refresh token", func(t *testing.T) {
		wantOAuthError(t, e.refresh(at), 400, "invalid_grant")
	})
	// Nothing above did harm: the genuine tokens still work.
	if e.introspect(at)["active"] != true {
		t.Fatal("the genuine access token was revoked by a forgery")
	}
	if r := e.refresh(rt); r.Status != 200 {
		t.Fatalf("the genuine refresh token stopped working: %d %s", r.Status, r.Body)
	}
	if n := f.Fetched.Load(); n != 0 {
		t.Fatalf("tokend fetched a URL from a token header %d times", n)
	}
}
