package ocm_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/ocm"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/tokendtest"
)

// TestLogin covers the Basic login (spec "ocm": "Without refreshToken: a
// new access token (and refresh token) for the Basic user"), with every
// form of an empty body, and the trailing slash.
func TestLogin(t *testing.T) {
	e := newEnv(t, nil)
	auth := basic("alice", alicePassword)
	for _, tc := range []struct {
		name, path, contentType, body string
	}{
		{"no body, no content type", path, "", ""},
		{"no body, JSON", path, jsonType, ""},
		{"no body, any content type", path, "text/plain", ""},
		{"no body, form content type", path, "application/x-www-form-urlencoded", ""},
		{"blank body", path, jsonType, " \r\n\t"},
		{"empty object", path, jsonType, "{}"},
		{"JSON with charset", path, "application/json; charset=utf-8", "{}"},
		{"+json media type", path, "application/vnd.oracle.resource+json", "{}"},
		{"refreshToken null counts as absent", path, jsonType, `{"refreshToken": null}`},
		{"unknown fields are ignored", path, jsonType, `{"scope": 1, "other": "x"}`},
		{"trailing slash", path + "/", "", ""},
		{"trailing slash, empty object", path + "/", jsonType, "{}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := wantAuthToken(t, e.post(tc.path, tc.contentType, tc.body, "Authorization", auth))
			claims, _ := e.VerifyWithJWKS(got.AccessToken)
			if claims["sub"] != e.aliceID {
				t.Fatalf("sub %v, want %s", claims["sub"], e.aliceID)
			}
		})
	}
	t.Run("Basic scheme is case-insensitive", func(t *testing.T) {
		h := "bAsIc " + strings.TrimPrefix(auth, "Basic ")
		wantAuthToken(t, e.post(path, "", "", "Authorization", h))
	})
	t.Run("each login is a new session", func(t *testing.T) {
		_, rt1 := e.login()
		_, rt2 := e.login()
		if rt1 == rt2 {
			t.Fatal("two logins got the same refresh token")
		}
	})
}

// TestVendorExample replays the seed's request: the page shows no body,
// only "POST /system/api/v1/security/token", "This call can be made with
// basic authorization", and (spec) the example expiresInMillis 1209600000.
func TestVendorExample(t *testing.T) {
	e := newEnv(t, nil)
	req, err := http.NewRequest("POST", e.Srv.URL+"/system/api/v1/security/token", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice", alicePassword)
	got := wantAuthToken(t, e.Send(req))
	if got.ExpiresInMillis != 1209600000 {
		t.Fatalf("expiresInMillis %d", got.ExpiresInMillis)
	}
	// The same with the V1AuthTokenRequestInfo body a generated client sends.
	req, _ = http.NewRequest("POST", e.Srv.URL+"/system/api/v1/security/token", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth("alice", alicePassword)
	wantAuthToken(t, e.Send(req))
}

// TestToken checks the token itself: verifiable with the JWKS alone, the
// engine's standard claims with typ JWT, 14 days, and introspectable.
func TestToken(t *testing.T) {
	e := newEnv(t, nil)
	at, rt := e.login()
	claims, header := e.VerifyWithJWKS(at)
	if typ, _ := header.ExtraHeaders["typ"].(string); typ != "JWT" {
		t.Fatalf("typ %q", typ)
	}
	if header.Algorithm != "ES256" {
		t.Fatalf("alg %s: the server's default is ES256", header.Algorithm)
	}
	for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "sid"} {
		if _, ok := claims[c]; !ok {
			t.Fatalf("claim %s missing: %v", c, claims)
		}
	}
	if claims["sub"] != e.aliceID || claims["iss"] != tokendtest.Issuer {
		t.Fatalf("claims %v", claims)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 14*24*3600 {
		t.Fatalf("lifetime %v s, want 14 days", exp-iat)
	}
	if jti, _ := claims["jti"].(string); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(jti) {
		t.Fatalf("jti %q", jti)
	}

	in := e.introspect(at)
	if in["active"] != true || in["sub"] != e.aliceID || in["token_use"] != "access_token" || in["username"] != "alice" {
		t.Fatalf("introspect access token: %v", in)
	}
	in = e.introspect(rt)
	if in["active"] != true || in["sub"] != e.aliceID || in["token_use"] != "refresh_token" || in["sid"] != claims["sid"] {
		t.Fatalf("introspect refresh token: %v", in)
	}
	if exp, _ := in["exp"].(float64); int64(exp) < e.Clock.Now().Add(30*day-time.Minute).Unix() {
		t.Fatalf("refresh token expires at %v, want 30 days on", exp)
	}

	t.Run("configured algorithm and lifetimes", func(t *testing.T) {
		e := tokendtest.New(t, tokendtest.Options{
			Config: func(c *grant.Config) { c.ExtraAlgs = []string{"RS256"} },
			Routes: func(e *tokendtest.Env) []httpapi.Routes {
				return []httpapi.Routes{ocm.New(e.Engine, ocm.Config{Alg: "RS256", AccessTTL: time.Hour, RefreshTTL: 2 * time.Hour})}
			},
		})
		e.AddUser("alice", alicePassword)
		r := e.Do("POST", path, "", "", "Authorization", basic("alice", alicePassword))
		var got authToken
		if err := json.Unmarshal(r.Body, &got); err != nil || r.Status != 200 || got.ExpiresInMillis != 3600000 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if _, h := e.VerifyWithJWKS(got.AccessToken); h.Algorithm != "RS256" {
			t.Fatalf("alg %s", h.Algorithm)
		}
		e.Clock.Advance(2*time.Hour + time.Second)
		r = e.Do("POST", path, jsonType, `{"refreshToken": `+quote(got.RefreshToken)+`}`)
		if r.Status != 400 {
			t.Fatalf("refresh after RefreshTTL: %d %s", r.Status, r.Body)
		}
	})
	t.Run("Profile", func(t *testing.T) {
		p := ocm.Profile(ocm.DefaultConfig)
		if p.Dialect != "ocm" || p.Rotate || p.NoSession || p.AccessTTL != 14*day || p.RefreshTTL != 30*day || p.Alg != "" {
			t.Fatalf("profile %+v", p)
		}
	})
}

// TestRefresh covers the refresh (spec "ocm": "With refreshToken: a new
// access token for that refresh token's subject; Basic may then be absent,
// but if present it must be the same subject, else 403"; "The refresh
// token is not rotated in this dialect: the same one is returned").
func TestRefresh(t *testing.T) {
	e := newEnv(t, nil)
	at, rt := e.login()
	sid := func(tok string) any {
		t.Helper()
		c, _ := e.VerifyWithJWKS(tok)
		return c["sid"]
	}
	for _, tc := range []struct {
		name   string
		path   string
		header []string
	}{
		{"without Basic", path, nil},
		{"trailing slash", path + "/", nil},
		{"with the subject's Basic", path, []string{"Authorization", basic("alice", alicePassword)}},
		{"a Bearer header is not Basic and is ignored", path, []string{"Authorization", "Bearer " + at}},
		{"again, without Basic", path, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(tc.path, jsonType, `{"refreshToken": `+quote(rt)+`}`, tc.header...)
			got := wantAuthToken(t, r)
			if got.RefreshToken != rt {
				t.Fatal("the refresh token was rotated; the dialect returns the same one")
			}
			if got.AccessToken == at {
				t.Fatal("the access token is not new")
			}
			if sid(got.AccessToken) != sid(at) {
				t.Fatal("the new access token belongs to another session")
			}
			claims, _ := e.VerifyWithJWKS(got.AccessToken)
			if claims["sub"] != e.aliceID {
				t.Fatalf("sub %v", claims["sub"])
			}
			if in := e.introspect(got.AccessToken); in["active"] != true {
				t.Fatalf("introspect: %v", in)
			}
		})
	}
	t.Run("Basic of another user", func(t *testing.T) {
		wantProblem(t, e.refresh(rt, "Authorization", basic("bob", bobPassword)), 403, ocm.CodeSubjectMismatch, detailSubjectMismatch, "")
	})
	t.Run("Basic of the subject with a wrong password", func(t *testing.T) {
		wantProblem(t, e.refresh(rt, "Authorization", basic("alice", "wrong")), 401, ocm.CodeBadCredentials, detailBadCredentials, "")
	})
	t.Run("Basic of a client app", func(t *testing.T) {
		wantProblem(t, e.refresh(rt, "Authorization", basic(e.clientID, e.clientSecret)), 403, ocm.CodeClientApp, detailClientApp, "")
	})
	t.Run("an access token is no refresh token", func(t *testing.T) {
		wantProblem(t, e.refresh(at), 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken")
	})
	t.Run("a tampered refresh token", func(t *testing.T) {
		bad := rt[:len(rt)-2] + "AA"
		if bad == rt {
			bad = rt[:len(rt)-2] + "BB"
		}
		wantProblem(t, e.refresh(bad), 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken")
		wantProblem(t, e.refresh(bad, "Authorization", basic("alice", alicePassword)), 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken")
	})
	t.Run("the standard endpoint's refresh tokens are refused", func(t *testing.T) {
		pub, _ := e.AddClient(true, "", nil, tokend.GrantPassword, tokend.GrantRefreshToken)
		v := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}, "client_id": {pub}}
		r := e.post("/oauth2/token", "application/x-www-form-urlencoded", v.Encode())
		if r.Status != 200 {
			t.Fatalf("oauth login: %d %s", r.Status, r.Body)
		}
		wantProblem(t, e.refresh(r.Str(t, "refresh_token")), 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken")
		// And the other way round: an OCM refresh token names no client.
		v = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {pub}}
		r = e.post("/oauth2/token", "application/x-www-form-urlencoded", v.Encode())
		if r.Status != 400 || r.Str(t, "error") != "invalid_grant" {
			t.Fatalf("oauth refresh with an OCM refresh token: %d %s", r.Status, r.Body)
		}
	})
}

// TestErrors covers every error row of the spec's "ocm" section, each
// answer compared whole. {RT} and {AT} in a body or header stand for a
// live refresh token and access token of alice.
func TestErrors(t *testing.T) {
	e := newEnv(t, nil)
	at, rt := e.login()
	carolID := e.AddUser("carol", "pw-of-carol")
	if err := e.Store.DisableUser(t.Context(), carolID, time.Now()); err != nil {
		t.Fatal(err)
	}
	pubID, _ := e.AddClient(true, "", nil, tokend.GrantPassword)
	offID, offSecret := e.AddClient(false, "", nil, tokend.GrantClientCredentials)
	if err := e.Store.DisableClient(t.Context(), offID); err != nil {
		t.Fatal(err)
	}
	if err := e.Engine.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	alice := basic("alice", alicePassword)
	big := `{"refreshToken": "` + strings.Repeat("a", 65<<10) + `"}`

	for _, tc := range []struct {
		name, method, path, contentType, body string
		header                                []string
		status                                int
		code, detail, errorPath               string
	}{
		// 401: missing or wrong credentials.
		{"no credentials", "POST", path, "", "", nil, 401, ocm.CodeCredentialsRequired, detailCredsRequired, ""},
		{"no credentials, empty object", "POST", path, jsonType, "{}", nil, 401, ocm.CodeCredentialsRequired, detailCredsRequired, ""},
		{"no credentials, trailing slash", "POST", path + "/", jsonType, "{}", nil, 401, ocm.CodeCredentialsRequired, detailCredsRequired, ""},
		{"Bearer instead of Basic", "POST", path, "", "", []string{"Authorization", "Bearer {AT}"}, 401, ocm.CodeCredentialsRequired, detailCredsRequired, ""},
		{"Basic with nothing", "POST", path, "", "", []string{"Authorization", "Basic"}, 401, ocm.CodeCredentialsRequired, detailCredsRequired, ""},
		{"wrong password", "POST", path, "", "", []string{"Authorization", basic("alice", "wrong")}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"wrong password, trailing slash", "POST", path + "/", "", "", []string{"Authorization", basic("alice", "wrong")}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"unknown user", "POST", path, "", "", []string{"Authorization", basic("nobody", "wrong")}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"empty password", "POST", path, "", "", []string{"Authorization", basic("alice", "")}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"empty username", "POST", path, "", "", []string{"Authorization", basic("", alicePassword)}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"Basic that is not base64", "POST", path, "", "", []string{"Authorization", "Basic !!!"}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"Basic without a colon", "POST", path, "", "", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"username in another case", "POST", path, "", "", []string{"Authorization", basic("ALICE", alicePassword)}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"disabled user", "POST", path, "", "", []string{"Authorization", basic("carol", "pw-of-carol")}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"client id with a wrong secret", "POST", path, "", "", []string{"Authorization", basic(e.clientID, "wrong")}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"public client id", "POST", path, "", "", []string{"Authorization", basic(pubID, "anything")}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"disabled client app", "POST", path, "", "", []string{"Authorization", basic(offID, offSecret)}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},
		{"wrong password with a refresh token", "POST", path, jsonType, `{"refreshToken": "{RT}"}`, []string{"Authorization", basic("alice", "wrong")}, 401, ocm.CodeBadCredentials, detailBadCredentials, ""},

		// 403: a client application's credentials; another subject.
		{"client app credentials", "POST", path, "", "", []string{"Authorization", basic(e.clientID, e.clientSecret)}, 403, ocm.CodeClientApp, detailClientApp, ""},
		{"client app credentials, trailing slash", "POST", path + "/", jsonType, "{}", []string{"Authorization", basic(e.clientID, e.clientSecret)}, 403, ocm.CodeClientApp, detailClientApp, ""},
		{"client app credentials with a refresh token", "POST", path, jsonType, `{"refreshToken": "{RT}"}`, []string{"Authorization", basic(e.clientID, e.clientSecret)}, 403, ocm.CodeClientApp, detailClientApp, ""},
		{"refresh token of another user", "POST", path, jsonType, `{"refreshToken": "{RT}"}`, []string{"Authorization", basic("bob", bobPassword)}, 403, ocm.CodeSubjectMismatch, detailSubjectMismatch, ""},

		// 400: the body.
		{"malformed JSON", "POST", path, jsonType, `{"refreshToken": `, []string{"Authorization", alice}, 400, ocm.CodeMalformed, detailMalformed, ""},
		{"malformed JSON without credentials", "POST", path, jsonType, `{`, nil, 400, ocm.CodeMalformed, detailMalformed, ""},
		{"array body", "POST", path, jsonType, `[]`, []string{"Authorization", alice}, 400, ocm.CodeMalformed, detailMalformed, ""},
		{"string body", "POST", path, jsonType, `"{RT}"`, nil, 400, ocm.CodeMalformed, detailMalformed, ""},
		{"number body", "POST", path, jsonType, `42`, []string{"Authorization", alice}, 400, ocm.CodeMalformed, detailMalformed, ""},
		{"null body", "POST", path, jsonType, `null`, []string{"Authorization", alice}, 400, ocm.CodeMalformed, detailMalformed, ""},
		{"two objects", "POST", path, jsonType, `{}{}`, []string{"Authorization", alice}, 400, ocm.CodeMalformed, detailMalformed, ""},
		{"trailing garbage", "POST", path, jsonType, `{} x`, []string{"Authorization", alice}, 400, ocm.CodeMalformed, detailMalformed, ""},
		{"text/plain body", "POST", path, "text/plain", `{}`, []string{"Authorization", alice}, 400, ocm.CodeMediaType, detailMediaType, ""},
		{"form body", "POST", path, "application/x-www-form-urlencoded", `refreshToken={RT}`, nil, 400, ocm.CodeMediaType, detailMediaType, ""},
		{"body without a content type", "POST", path, "", `{}`, []string{"Authorization", alice}, 400, ocm.CodeMediaType, detailMediaType, ""},
		{"XML body", "POST", path + "/", "application/xml", `<refreshToken/>`, []string{"Authorization", alice}, 400, ocm.CodeMediaType, detailMediaType, ""},
		{"refreshToken a number", "POST", path, jsonType, `{"refreshToken": 42}`, []string{"Authorization", alice}, 400, ocm.CodeRefreshTokenType, detailRefreshType, "$.refreshToken"},
		{"refreshToken a boolean", "POST", path, jsonType, `{"refreshToken": true}`, nil, 400, ocm.CodeRefreshTokenType, detailRefreshType, "$.refreshToken"},
		{"refreshToken an array", "POST", path, jsonType, `{"refreshToken": ["{RT}"]}`, nil, 400, ocm.CodeRefreshTokenType, detailRefreshType, "$.refreshToken"},
		{"refreshToken an object", "POST", path, jsonType, `{"refreshToken": {"value": "{RT}"}}`, nil, 400, ocm.CodeRefreshTokenType, detailRefreshType, "$.refreshToken"},
		{"refreshToken empty", "POST", path, jsonType, `{"refreshToken": ""}`, []string{"Authorization", alice}, 400, ocm.CodeRefreshTokenType, detailRefreshType, "$.refreshToken"},
		{"refreshToken empty, trailing slash", "POST", path + "/", jsonType, `{"refreshToken": ""}`, nil, 400, ocm.CodeRefreshTokenType, detailRefreshType, "$.refreshToken"},

		// 400: the refresh token.
		{"unknown refresh token", "POST", path, jsonType, `{"refreshToken": "nope"}`, nil, 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken"},
		{"unknown refresh token with Basic", "POST", path, jsonType, `{"refreshToken": "nope"}`, []string{"Authorization", alice}, 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken"},
		{"access token as refresh token", "POST", path, jsonType, `{"refreshToken": "{AT}"}`, nil, 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken"},
		{"refresh token with whitespace", "POST", path, jsonType, `{"refreshToken": " {RT}"}`, nil, 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken"},
		{"refresh token, trailing slash", "POST", path + "/", jsonType, `{"refreshToken": "rt1_x"}`, nil, 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken"},

		// 413: over 64 KiB.
		{"oversized body", "POST", path, jsonType, big, nil, 413, ocm.CodeTooLarge, detailTooLarge, ""},
		{"oversized body with Basic", "POST", path + "/", jsonType, big, []string{"Authorization", alice}, 413, ocm.CodeTooLarge, detailTooLarge, ""},

		// 405: only POST.
		{"GET", "GET", path, "", "", []string{"Authorization", alice}, 405, ocm.CodeMethodNotAllowed, detailMethod, ""},
		{"GET, trailing slash", "GET", path + "/", "", "", nil, 405, ocm.CodeMethodNotAllowed, detailMethod, ""},
		{"PUT", "PUT", path, jsonType, "{}", []string{"Authorization", alice}, 405, ocm.CodeMethodNotAllowed, detailMethod, ""},
		{"PATCH", "PATCH", path, jsonType, "{}", nil, 405, ocm.CodeMethodNotAllowed, detailMethod, ""},
		{"DELETE", "DELETE", path + "/", "", "", nil, 405, ocm.CodeMethodNotAllowed, detailMethod, ""},
		{"OPTIONS", "OPTIONS", path, "", "", nil, 405, ocm.CodeMethodNotAllowed, detailMethod, ""},
		{"unknown method", "FROB", path, "", "", nil, 405, ocm.CodeMethodNotAllowed, detailMethod, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fill := strings.NewReplacer("{RT}", rt, "{AT}", at)
			header := slices.Clone(tc.header)
			for i := range header {
				header[i] = fill.Replace(header[i])
			}
			r := e.Do(tc.method, tc.path, tc.contentType, fill.Replace(tc.body), header...)
			wantProblem(t, r, tc.status, tc.code, tc.detail, tc.errorPath)
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		r := e.Do("HEAD", path, "", "")
		if r.Status != 405 || r.Header.Get("Allow") != "POST" {
			t.Fatalf("%d %v", r.Status, r.Header)
		}
	})
	t.Run("unknown user and wrong password look the same", func(t *testing.T) {
		a := e.post(path, "", "", "Authorization", basic("alice", "wrong"))
		b := e.post(path, "", "", "Authorization", basic("nobody", "wrong"))
		if a.Status != b.Status || !bytes.Equal(a.Body, b.Body) {
			t.Fatalf("responses differ: %d %s / %d %s", a.Status, a.Body, b.Status, b.Body)
		}
	})
	t.Run("the refresh token still works after all that", func(t *testing.T) {
		wantAuthToken(t, e.refresh(rt))
	})
}

// TestExpiry: access tokens live 14 days, refresh tokens 30.
func TestExpiry(t *testing.T) {
	e := newEnv(t, nil)
	at, rt := e.login()

	e.Clock.Advance(14*day + time.Second)
	if in := e.introspect(at); in["active"] != false {
		t.Fatalf("an access token past 14 days: %v", in)
	}
	got := wantAuthToken(t, e.refresh(rt))
	if in := e.introspect(got.AccessToken); in["active"] != true {
		t.Fatalf("a fresh access token: %v", in)
	}

	e.Clock.Advance(16 * day) // 30 days and a second after the login
	wantProblem(t, e.refresh(rt), 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken")
	wantProblem(t, e.refresh(rt, "Authorization", basic("alice", alicePassword)), 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken")
	if in := e.introspect(rt); in["active"] != false {
		t.Fatalf("an expired refresh token: %v", in)
	}
	// A new login still works.
	e.login()
}

// TestRevocation: tokens of the dialect are revocable at /oauth2/revoke by
// any confidential client (they were issued to no client).
func TestRevocation(t *testing.T) {
	e := newEnv(t, nil)
	t.Run("refresh token ends the session", func(t *testing.T) {
		at, rt := e.login()
		e.revoke(rt)
		wantProblem(t, e.refresh(rt), 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken")
		wantProblem(t, e.refresh(rt, "Authorization", basic("alice", alicePassword)), 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken")
		if in := e.introspect(at); in["active"] != false {
			t.Fatalf("the session's access token: %v", in)
		}
		if in := e.introspect(rt); in["active"] != false {
			t.Fatalf("the refresh token: %v", in)
		}
	})
	t.Run("access token", func(t *testing.T) {
		at, rt := e.login()
		e.revoke(at)
		if in := e.introspect(at); in["active"] != false {
			t.Fatalf("revoked access token: %v", in)
		}
		// The session lives on.
		wantAuthToken(t, e.refresh(rt))
	})
	t.Run("disabling the user ends the sessions", func(t *testing.T) {
		at, rt := e.login()
		if err := e.Store.DisableUser(t.Context(), e.aliceID, time.Now()); err != nil {
			t.Fatal(err)
		}
		wantProblem(t, e.refresh(rt), 400, ocm.CodeRefreshTokenInvalid, detailRefreshInvalid, "$.refreshToken")
		wantProblem(t, e.post(path, "", "", "Authorization", basic("alice", alicePassword)), 401, ocm.CodeBadCredentials, detailBadCredentials, "")
		if in := e.introspect(at); in["active"] != false {
			t.Fatalf("access token of a disabled user: %v", in)
		}
	})
}

// TestMetrics: the dialect's tokens and refusals are counted under "ocm".
func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	at, rt := e.login()
	wantAuthToken(t, e.refresh(rt))
	e.post(path, "", "", "Authorization", basic("alice", "wrong"))
	e.post(path, "", "", "Authorization", basic(e.clientID, e.clientSecret))
	e.post(path, jsonType, "{")

	r := e.Do("GET", "/metrics", "", "")
	if r.Status != 200 {
		t.Fatalf("metrics: %d", r.Status)
	}
	body := string(r.Body)
	for _, want := range []string{
		`tokend_tokens_issued_total{dialect="ocm",grant="password"} 1`,
		`tokend_tokens_issued_total{dialect="ocm",grant="refresh_token"} 1`,
		`tokend_user_activity_total{dialect="ocm",kind="login"} 1`,
		`tokend_user_activity_total{dialect="ocm",kind="refresh"} 1`,
		`tokend_failures_total{dialect="ocm",reason="invalid_grant"} 1`,
		`tokend_failures_total{dialect="ocm",reason="forbidden"} 1`,
		`tokend_failures_total{dialect="ocm",reason="invalid_request"} 1`,
		`tokend_http_request_duration_seconds_bucket{code="200",route="POST /system/api/v1/security/token"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, s := range []string{at, rt, alicePassword, e.clientSecret} {
		if strings.Contains(body, s) {
			t.Fatal("metrics carry a secret")
		}
	}
}

// TestInternalError: a store failure is a 500 that reveals nothing,
// logged once.
func TestInternalError(t *testing.T) {
	e := newEnv(t, nil)
	_, rt := e.login()
	e.Store.Close()
	for _, tc := range []struct {
		name, body string
		header     []string
	}{
		{"login", "", []string{"Authorization", basic("alice", alicePassword)}},
		{"refresh", `{"refreshToken": ` + quote(rt) + `}`, nil},
		{"client app check", "", []string{"Authorization", basic("00000000-0000-0000-0000-000000000000", "x")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(e.Logs(), "ocm token request failed")
			r := e.post(path, jsonType, tc.body, tc.header...)
			wantProblem(t, r, 500, ocm.CodeInternal, detailInternal, "")
			b := strings.ToLower(string(r.Body))
			for _, leak := range []string{"sql", "database", "closed", strings.ToLower(e.DBFile), "tokend.db", "goroutine"} {
				if strings.Contains(b, leak) {
					t.Fatalf("the 500 reveals %q: %s", leak, r.Body)
				}
			}
			if n := strings.Count(e.Logs(), "ocm token request failed") - before; n != 1 {
				t.Fatalf("logged %d times, want once; logs:\n%s", n, e.Logs())
			}
		})
	}
}

// TestUnavailable floods the bounded password hasher: past its queue a
// login is refused at once with 503 and Retry-After, never queued without
// bound (DESIGN.md: "Concurrent hash work is bounded").
func TestUnavailable(t *testing.T) {
	// One hash worker (the hasher sizes itself to GOMAXPROCS when the env
	// starts), so that a burst overflows the queue.
	prev := runtime.GOMAXPROCS(1)
	e := newEnv(t, &secret.Params{MemoryKiB: 1 << 10, Time: 1, Threads: 1})
	runtime.GOMAXPROCS(prev)

	// The queue holds one running and 64 waiting checks (tokendtest).
	const burst = 150
	client := e.Srv.Client()
	auth := basic("nobody", "wrong")
	for round := range 5 {
		var mu sync.Mutex
		var unavailable []tokendtest.Response
		var errs []error
		var wg sync.WaitGroup
		for range burst {
			wg.Go(func() {
				r, err := sendRaw(client, e.Srv.URL+path, auth)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case r.Status == 503:
					unavailable = append(unavailable, r)
				case r.Status != 401:
					errs = append(errs, fmt.Errorf("status %d: %s", r.Status, r.Body))
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatal(errs[0])
		}
		if len(unavailable) > 0 {
			wantProblem(t, unavailable[0], 503, ocm.CodeUnavailable, detailUnavailable, "")
			return
		}
		t.Logf("round %d: no request overflowed the queue", round)
	}
	t.Fatalf("%d concurrent logins never overflowed the hash queue", burst)
}

// sendRaw posts to url with an Authorization header; safe to call from
// any goroutine, as it never fails the test itself.
func sendRaw(client *http.Client, url, auth string) (tokendtest.Response, error) {
	req, err := http.NewRequest("POST", url, nil)
	if err != nil {
		return tokendtest.Response{}, err
	}
	req.Header.Set("Authorization", auth)
	resp, err := client.Do(req)
	if err != nil {
		return tokendtest.Response{}, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return tokendtest.Response{}, err
	}
	return tokendtest.Response{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}, nil
}

// TestLogsCarryNoSecrets runs the dialect's flows, failures included, and
// scans the server's logs for passwords and tokens.
func TestLogsCarryNoSecrets(t *testing.T) {
	e := newEnv(t, nil)
	at, rt := e.login()
	got := wantAuthToken(t, e.refresh(rt))
	e.refresh(rt, "Authorization", basic("bob", bobPassword))
	e.post(path, "", "", "Authorization", basic("alice", "wrong-"+alicePassword))
	e.post(path, "", "", "Authorization", basic(e.clientID, e.clientSecret))
	e.refresh(rt + "x")
	e.revoke(rt)
	e.refresh(rt)
	e.Store.Close()
	e.post(path, "", "", "Authorization", basic("alice", alicePassword))
	logs := e.Logs()
	for name, s := range map[string]string{
		"password": alicePassword, "client secret": e.clientSecret, "access token": at,
		"refreshed access token": got.AccessToken, "refresh token": rt,
		"token signature": at[strings.LastIndex(at, ".")+1:],
	} {
		if strings.Contains(logs, s) {
			t.Errorf("the logs carry a %s", name)
		}
	}
}
