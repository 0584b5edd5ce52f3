package simplejwt_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/simplejwt"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/tokendtest"
)

// TestOptions checks Django REST framework's metadata document on OPTIONS
// for each endpoint (shared/spec/dialects.md): the view's name, what it
// renders and parses, and its POST fields in the serializer's order.
func TestOptions(t *testing.T) {
	e := newEnv(t, simplejwt.DefaultConfig)
	const common = `"renders":["application/json"],"parses":["application/json","application/x-www-form-urlencoded","multipart/form-data"]`
	field := func(name, label string, required, readOnly bool) string {
		return `"` + name + `":{"type":"string","required":` + map[bool]string{true: "true", false: "false"}[required] +
			`,"read_only":` + map[bool]string{true: "true", false: "false"}[readOnly] + `,"label":"` + label + `"}`
	}
	for path, c := range map[string]struct{ name, fields string }{
		simplejwt.PathObtain:    {"Token Obtain Pair", field("username", "Username", true, false) + "," + field("password", "Password", true, false)},
		simplejwt.PathRefresh:   {"Token Refresh", field("refresh", "Refresh", true, false) + "," + field("access", "Access", false, true)},
		simplejwt.PathVerify:    {"Token Verify", field("token", "Token", true, false)},
		simplejwt.PathBlacklist: {"Token Blacklist", field("refresh", "Refresh", true, false)},
	} {
		for _, p := range []string{path, strings.TrimSuffix(path, "/")} {
			t.Run(p, func(t *testing.T) {
				r := e.Do("OPTIONS", p, "", "")
				m := r.JSON(t)
				desc, _ := m["description"].(string)
				if desc == "" {
					t.Fatalf("no description: %s", r.Body)
				}
				want(t, r, 200, `{"name":"`+c.name+`","description":"`+desc+`",`+common+`,"actions":{"POST":{`+c.fields+`}}}`)
				if a := r.Header.Get("Allow"); a != "POST, OPTIONS" {
					t.Fatalf("Allow %q", a)
				}
			})
		}
	}
}

// TestNotAcceptable checks DRF's content negotiation: an Accept header
// that allows neither JSON nor HTML gets 406, before anything else.
func TestNotAcceptable(t *testing.T) {
	e := newEnv(t, simplejwt.DefaultConfig)
	for _, c := range []struct {
		accept string
		status int
	}{
		{"application/xml", 406},
		{"image/png, text/csv", 406},
		{"garbage", 406},
		{"application/json", 400},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 400},
		{"application/*", 400},
		{"", 400},
	} {
		for _, method := range []string{"POST", "GET", "OPTIONS"} {
			r := e.Do(method, simplejwt.PathObtain, jsonType, `{}`, "Accept", c.accept)
			status := c.status
			switch {
			case status == 406:
				want(t, r, 406, `{"detail":"Could not satisfy the request Accept header."}`)
			case method == "GET":
				status = 405
			case method == "OPTIONS":
				status = 200
			}
			if r.Status != status {
				t.Fatalf("%s with Accept %q: %d %s", method, c.accept, r.Status, r.Body)
			}
		}
	}
}

// TestObtainStatus checks --simplejwt-obtain-status: the seed's 400 by
// default, stock simplejwt's 401 with its challenge when asked for, and
// nothing else.
func TestObtainStatus(t *testing.T) {
	bad := js(map[string]string{"username": aliceName, "password": "wrong"})
	r := newEnv(t, simplejwt.DefaultConfig).post(simplejwt.PathObtain, bad)
	want(t, r, 400, noAccount)
	if wa := r.Header.Get("WWW-Authenticate"); wa != "" {
		t.Fatalf("400 with a challenge %q", wa)
	}
	cfg := simplejwt.DefaultConfig
	cfg.ObtainStatus = 401
	e := newEnv(t, cfg)
	wantToken(t, e.post(simplejwt.PathObtain, bad), noAccount)
	// Only refused logins change: a field error is still a 400.
	want(t, e.post(simplejwt.PathObtain, `{}`), 400, `{"username":["This field is required."],"password":["This field is required."]}`)
	if _, at := e.obtain(); at == "" {
		t.Fatal("no login")
	}
	for _, s := range []int{200, 403, 402} {
		cfg.ObtainStatus = s
		if cfg.Validate() == nil {
			t.Fatalf("obtain status %d accepted", s)
		}
	}
}

// TestUserIDClaim checks that user_id is a JSON number for a user whose
// id is a decimal integer (an imported Django user) and a string for
// tokend's own UUIDs, and that the engine finds the user from either.
func TestUserIDClaim(t *testing.T) {
	e := newEnv(t, simplejwt.DefaultConfig)
	hash, err := secret.HashPassword("pw-of-42", tokendtest.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.CreateUser(context.Background(), &tokend.User{ID: "42", Username: "django.user", PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r := e.post(simplejwt.PathObtain, js(map[string]string{"username": "django.user", "password": "pw-of-42"}))
	at, rt := r.Str(t, "access"), r.Str(t, "refresh")
	c, _ := e.VerifyWithJWKS(at)
	if c["user_id"] != float64(42) || c["sub"] != "42" {
		t.Fatalf("claims of user 42: %v", c)
	}
	if !strings.Contains(string(tokenPayload(t, at)), `"user_id":42`) {
		t.Fatalf("user_id is not the number 42: %s", tokenPayload(t, at))
	}
	want(t, e.verify(at), 200, `{}`)
	if r := e.refresh(rt); r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	if m := e.introspect(at); m["active"] != true || m["sub"] != "42" || m["username"] != "django.user" {
		t.Fatalf("introspection: %v", m)
	}
	// tokend's own ids stay strings.
	_, at = e.obtain()
	if c, _ := e.VerifyWithJWKS(at); c["user_id"] != e.aliceID {
		t.Fatalf("user_id of a UUID user: %v", c["user_id"])
	}
}

// tokenPayload returns a JWT's payload JSON, unverified.
func tokenPayload(t *testing.T, tok string) []byte {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestClaimNames checks USER_ID_CLAIM and TOKEN_TYPE_CLAIM: tokens carry
// the claims under the configured names only, and the dialect still reads
// its own tokens back (verify, refresh, blacklist, wrong type).
func TestClaimNames(t *testing.T) {
	cfg := simplejwt.DefaultConfig
	cfg.UserIDClaim, cfg.TokenTypeClaim = "uid", "kind"
	e := newEnv(t, cfg)
	rt, at := e.obtain()
	c, _ := e.VerifyWithJWKS(at)
	wantKeys(t, c, "iss", "sub", "aud", "exp", "iat", "jti", "sid", "kind", "uid")
	if c["kind"] != "access" || c["uid"] != e.aliceID {
		t.Fatalf("access claims %v", c)
	}
	rc, _ := e.VerifyWithJWKSFor(rt, refreshAud)
	if rc["kind"] != "refresh" || rc["uid"] != e.aliceID || rc["token_type"] != nil {
		t.Fatalf("refresh claims %v", rc)
	}
	want(t, e.verify(at), 200, `{}`)
	want(t, e.verify(rt), 200, `{}`)
	wantToken(t, e.refresh(at), wrongType)
	if r := e.refresh(rt); r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	if m := e.introspect(at); m["active"] != true || m["sub"] != e.aliceID {
		t.Fatalf("introspection: %v", m)
	}
	want(t, e.blacklist(rt), 200, `{}`)
	wantToken(t, e.verify(at), blacklisted)

	for _, bad := range []simplejwt.Config{
		{UserIDClaim: "sub"}, {TokenTypeClaim: "exp"}, {UserIDClaim: "x", TokenTypeClaim: "x"},
		{UserIDClaim: "has space"}, {TokenTypeClaim: strings.Repeat("k", 65)}, {UserIDClaim: "token_type"},
	} {
		if bad.Validate() == nil {
			t.Fatalf("claim names %q/%q accepted", bad.UserIDClaim, bad.TokenTypeClaim)
		}
	}
}
