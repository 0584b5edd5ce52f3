package simplejwt_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/simplejwt"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/tokendtest"
)

func TestObtain(t *testing.T) {
	for _, path := range []string{"/api/v1/token/", "/api/v1/token"} {
		t.Run(path, func(t *testing.T) {
			e := newEnv(t, simplejwt.DefaultConfig)
			before := time.Now().Add(-time.Second)
			r := e.post(path, `{"username": "alice.williams", "password": "S3cur3P@ssw0rd!"}`)
			rt, at := r.Str(t, "refresh"), r.Str(t, "access")
			// Exactly these two fields, in simplejwt's order.
			want(t, r, 200, `{"refresh":"`+rt+`","access":"`+at+`"}`)
			if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("Cache-Control %q", cc)
			}

			claims, h := e.VerifyWithJWKS(at)
			wantKeys(t, claims, "iss", "sub", "aud", "exp", "iat", "jti", "sid", "token_type", "user_id")
			if claims["token_type"] != "access" || claims["user_id"] != e.aliceID || claims["sub"] != e.aliceID ||
				!hex32.MatchString(claims["jti"].(string)) || h.ExtraHeaders["typ"] != "JWT" || h.Algorithm != "ES256" {
				t.Fatalf("access token %v %v", claims, h.ExtraHeaders)
			}
			if d := num(t, claims["exp"]) - num(t, claims["iat"]); d != int64((7 * day).Seconds()) {
				t.Fatalf("access lifetime %ds, want 7 days", d)
			}

			rclaims, rh := e.VerifyWithJWKSFor(rt, refreshAud)
			wantKeys(t, rclaims, "iss", "sub", "aud", "exp", "iat", "jti", "sid", "token_type", "user_id", "ctr")
			if rclaims["token_type"] != "refresh" || rclaims["user_id"] != e.aliceID || rclaims["sid"] != claims["sid"] ||
				!hex32.MatchString(rclaims["jti"].(string)) || rclaims["jti"] == claims["jti"] || rh.ExtraHeaders["typ"] != "JWT" {
				t.Fatalf("refresh token %v %v", rclaims, rh.ExtraHeaders)
			}
			if d := num(t, rclaims["exp"]) - num(t, rclaims["iat"]); d != int64((30 * day).Seconds()) {
				t.Fatalf("refresh lifetime %ds, want 30 days", d)
			}

			u := e.user(e.aliceID)
			if u.LastLoginAt.Before(before) || !u.LastRefreshAt.IsZero() {
				t.Fatalf("activity after obtain: login %v, refresh %v", u.LastLoginAt, u.LastRefreshAt)
			}
			if n := e.metric("tokend_tokens_issued_total", `dialect="simplejwt"`, `grant="password"`); n != 1 {
				t.Fatalf("issued metric %v", n)
			}
			if n := e.metric("tokend_user_activity_total", `dialect="simplejwt"`, `kind="login"`); n != 1 {
				t.Fatalf("login activity metric %v", n)
			}
		})
	}
}

// TestSeedExample replays the example request of the vendor's page (seed
// 001) byte for byte.
func TestSeedExample(t *testing.T) {
	e := newEnv(t, simplejwt.DefaultConfig)
	for _, body := range []string{
		"{\n  \"username\": \"alice.williams\",\n  \"password\": \"S3cur3P@ssw0rd!\"\n}",
		"{\n \"username\": \"alice.williams\",\n \"password\": \"S3cur3P@ssw0rd!\"\n}",
		`{"username":"alice.williams","password":"S3cur3P@ssw0rd!"}`,
	} {
		req, err := http.NewRequest("POST", e.Srv.URL+"/api/v1/token/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Add("Content-Type", "application/json")
		r := e.Send(req)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		wantKeys(t, r.JSON(t), "refresh", "access")
		e.VerifyWithJWKS(r.Str(t, "access"))
		e.VerifyWithJWKSFor(r.Str(t, "refresh"), refreshAud)
	}
}

func TestObtainAccepted(t *testing.T) {
	e := newEnv(t, simplejwt.DefaultConfig)
	cases := []struct{ name, contentType, body string }{
		{"form body", formType, url.Values{"username": {aliceName}, "password": {alicePassword}}.Encode()},
		{"charset parameter", "application/json; charset=utf-8", js(map[string]string{"username": aliceName, "password": alicePassword})},
		{"multipart body", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\n" + aliceName +
			"\r\n--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n" + alicePassword + "\r\n--b--\r\n"},
		{"upper-case media type", "Application/JSON", js(map[string]string{"username": aliceName, "password": alicePassword})},
		{"unknown fields ignored", jsonType, js(map[string]any{"username": aliceName, "password": alicePassword, "scope": 5, "extra": nil})},
		// A DRF CharField trims whitespace around the username.
		{"username with surrounding spaces", jsonType, js(map[string]string{"username": " " + aliceName + "\t", "password": alicePassword})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.Do("POST", "/api/v1/token/", c.contentType, c.body)
			if r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			wantKeys(t, r.JSON(t), "refresh", "access")
		})
	}
}

func TestObtainRefused(t *testing.T) {
	e := newEnv(t, simplejwt.DefaultConfig)
	disabledID := e.AddUser("bob", "pw-of-bob")
	if err := e.Store.DisableUser(t.Context(), disabledID, time.Now()); err != nil {
		t.Fatal(err)
	}
	// An end user of a client app (taiki) never logs in with a password.
	hash, err := secret.HashPassword("pw-of-end-user", tokendtest.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	end := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: "end-user", PasswordHash: hash, ClientID: e.clientID, CreatedAt: time.Now()}
	if err := e.Store.CreateUser(t.Context(), end); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 70<<10)

	cases := []struct {
		name, contentType, body string
		status                  int
		want                    string
	}{
		{"wrong password", jsonType, `{"username":"alice.williams","password":"nope"}`, 400, noAccount},
		{"unknown user", jsonType, `{"username":"nobody","password":"nope"}`, 400, noAccount},
		{"disabled user", jsonType, `{"username":"bob","password":"pw-of-bob"}`, 400, noAccount},
		{"end user of a client app", jsonType, `{"username":"end-user","password":"pw-of-end-user"}`, 400, noAccount},
		// The password is compared exactly as sent (ours; DRF would trim it).
		{"password with surrounding spaces", jsonType, `{"username":"alice.williams","password":" S3cur3P@ssw0rd! "}`, 400, noAccount},
		{"wrong case of username", jsonType, `{"username":"Alice.Williams","password":"S3cur3P@ssw0rd!"}`, 400, noAccount},

		{"missing username", jsonType, `{"password":"x"}`, 400, `{"username":["This field is required."]}`},
		{"missing password", jsonType, `{"username":"alice.williams"}`, 400, `{"password":["This field is required."]}`},
		{"empty object", jsonType, `{}`, 400, `{"username":["This field is required."],"password":["This field is required."]}`},
		{"empty body", jsonType, ``, 400, `{"username":["This field is required."],"password":["This field is required."]}`},
		{"blank username", jsonType, `{"username":"","password":"x"}`, 400, `{"username":["This field may not be blank."]}`},
		{"blank password", jsonType, `{"username":"alice.williams","password":""}`, 400, `{"password":["This field may not be blank."]}`},
		{"whitespace username", jsonType, `{"username":"  \t","password":"x"}`, 400, `{"username":["This field may not be blank."]}`},
		{"whitespace password", jsonType, `{"username":"alice.williams","password":"   "}`, 400, `{"password":["This field may not be blank."]}`},
		{"null username", jsonType, `{"username":null,"password":"x"}`, 400, `{"username":["This field may not be null."]}`},
		{"null password", jsonType, `{"username":"alice.williams","password":null}`, 400, `{"password":["This field may not be null."]}`},
		// A number is taken as its text (DRF's CharField): no such user.
		{"number username", jsonType, `{"username":42,"password":"x"}`, 400, noAccount},
		{"float password", jsonType, `{"username":"alice.williams","password":1.5}`, 400, noAccount},
		{"NUL in username", jsonType, `{"username":"a\u0000b","password":"x"}`, 400, `{"username":["Null characters are not allowed."]}`},
		{"bool password", jsonType, `{"username":"alice.williams","password":true}`, 400, `{"password":["Not a valid string."]}`},
		{"object username", jsonType, `{"username":{"a":1},"password":"x"}`, 400, `{"username":["Not a valid string."]}`},
		{"array password", jsonType, `{"username":"alice.williams","password":["x"]}`, 400, `{"password":["Not a valid string."]}`},
		{"both bad", jsonType, `{"password":false,"username":null}`, 400, `{"username":["This field may not be null."],"password":["Not a valid string."]}`},
		{"blank form fields", formType, `username=&password=`, 400, `{"username":["This field may not be blank."],"password":["This field may not be blank."]}`},
		{"form missing password", formType, `username=alice.williams`, 400, `{"password":["This field is required."]}`},

		{"malformed JSON", jsonType, `{"username": "alice.williams", "password": `, 400, parseError("Expecting value: line 1 column 44 (char 43)")},
		{"trailing comma", jsonType, `{"username":"a","password":"b",}`, 400, parseError("Expecting property name enclosed in double quotes: line 1 column 32 (char 31)")},
		{"trailing garbage", jsonType, `{"username":"a","password":"b"} x`, 400, parseError("Extra data: line 1 column 33 (char 32)")},
		{"two objects", jsonType, `{"username":"a","password":"b"}{"username":"a"}`, 400, parseError("Extra data: line 1 column 32 (char 31)")},
		{"only white space", jsonType, "  \n", 400, parseError("Expecting value: line 2 column 1 (char 3)")},
		{"NaN", jsonType, `{"username":NaN,"password":"x"}`, 400, parseError("Out of range float values are not JSON compliant: 'NaN'")},
		{"duplicate key", jsonType, `{"username":"a","username":"b","password":"x"}`, 400, parseError("duplicate key $.username")},
		{"array body", jsonType, `["alice.williams","S3cur3P@ssw0rd!"]`, 400, notDict("list")},
		{"string body", jsonType, `"alice.williams"`, 400, notDict("str")},
		{"integer body", jsonType, `42`, 400, notDict("int")},
		{"float body", jsonType, `4.2e1`, 400, notDict("float")},
		{"boolean body", jsonType, `true`, 400, notDict("bool")},
		{"null body", jsonType, `null`, 400, `{"non_field_errors":["No data provided"]}`},
		{"bad form encoding", formType, `username=%zz&password=x`, 400, `{"detail":"Form parse error - invalid percent-encoding"}`},
		{"form parameter twice", formType, `username=a&username=b&password=x`, 400, `{"detail":"Form parse error - duplicate parameter username"}`},

		{"text/plain", "text/plain", `{"username":"alice.williams","password":"S3cur3P@ssw0rd!"}`, 415, mediaType("text/plain")},
		{"text/plain with a charset", "text/plain; charset=utf-8", `{}`, 415, mediaType("text/plain; charset=utf-8")},
		{"no content type", "", `{"username":"alice.williams","password":"S3cur3P@ssw0rd!"}`, 415, mediaType("text/plain")},
		{"xml", "application/xml", `<username>alice.williams</username>`, 415, mediaType("application/xml")},
		{"+json media type", "application/vnd.api+json", `{}`, 415, mediaType("application/vnd.api+json")},
		{"multipart without parts", "multipart/form-data; boundary=x", "--x\r\n", 400, `{"username":["This field is required."],"password":["This field is required."]}`},
		{"multipart without boundary", "multipart/form-data", "--x\r\n", 400, `{"detail":"Multipart form parse error - Invalid boundary in multipart: None"}`},
		{"multipart file as password", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice.williams\r\n" +
			"--b\r\nContent-Disposition: form-data; name=\"password\"; filename=\"pw.txt\"\r\n\r\nS3cur3P@ssw0rd!\r\n--b--\r\n", 400, `{"password":["Not a valid string."]}`},

		{"oversized JSON", jsonType, `{"username":"` + long + `","password":"x"}`, 413, tooLarge},
		{"oversized form", formType, `username=` + long + `&password=x`, 413, tooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/api/v1/token/", "/api/v1/token"} {
				want(t, e.Do("POST", path, c.contentType, c.body), c.status, c.want)
			}
		})
	}
	if n := e.metric("tokend_failures_total", `dialect="simplejwt"`, `reason="invalid_grant"`); n < 12 {
		t.Fatalf("refused logins counted %v times", n)
	}
	if u := e.user(e.aliceID); !u.LastLoginAt.IsZero() {
		t.Fatal("a refused login recorded a login")
	}
}

var paths = []string{
	"/api/v1/token/", "/api/v1/token",
	"/api/v1/token/refresh/", "/api/v1/token/refresh",
	"/api/v1/token/verify/", "/api/v1/token/verify",
	"/api/v1/token/blacklist/", "/api/v1/token/blacklist",
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, simplejwt.DefaultConfig)
	for _, path := range paths {
		for _, method := range []string{"GET", "PUT", "PATCH", "DELETE"} {
			t.Run(method+" "+path, func(t *testing.T) {
				r := e.Do(method, path, jsonType, `{}`)
				want(t, r, 405, `{"detail":"Method \"`+method+`\" not allowed."}`)
				if a := r.Header.Get("Allow"); a != "POST, OPTIONS" {
					t.Fatalf("Allow %q", a)
				}
			})
		}
		t.Run("HEAD "+path, func(t *testing.T) {
			r := e.Do("HEAD", path, "", "")
			if r.Status != 405 || r.Header.Get("Allow") != "POST, OPTIONS" || len(r.Body) != 0 {
				t.Fatalf("%d %q %s", r.Status, r.Header.Get("Allow"), r.Body)
			}
		})
	}
	t.Run("neighbouring paths are not served", func(t *testing.T) {
		for _, p := range []string{"/api/v1/token/x", "/api/v1/token/refresh/x", "/api/v1/token/verify/x/", "/api/v1/tokens"} {
			if r := e.post(p, `{}`); r.Status != 404 {
				t.Fatalf("%s: %d %s", p, r.Status, r.Body)
			}
		}
	})
}

// TestTokenFields checks the field errors and body errors of the three
// endpoints that take a token.
func TestTokenFields(t *testing.T) {
	e := newEnv(t, simplejwt.DefaultConfig)
	long := strings.Repeat("x", 70<<10)
	for _, ep := range []struct{ path, field string }{
		{"/api/v1/token/refresh/", "refresh"},
		{"/api/v1/token/verify/", "token"},
		{"/api/v1/token/blacklist/", "refresh"},
	} {
		f := ep.field
		cases := []struct {
			name, contentType, body string
			status                  int
			want                    string
		}{
			{"missing", jsonType, `{}`, 400, `{"` + f + `":["This field is required."]}`},
			{"empty body", jsonType, ``, 400, `{"` + f + `":["This field is required."]}`},
			{"blank", jsonType, `{"` + f + `":""}`, 400, `{"` + f + `":["This field may not be blank."]}`},
			{"whitespace", jsonType, `{"` + f + `":" \n "}`, 400, `{"` + f + `":["This field may not be blank."]}`},
			{"null", jsonType, `{"` + f + `":null}`, 400, `{"` + f + `":["This field may not be null."]}`},
			{"number", jsonType, `{"` + f + `":12345}`, 401, tokenNotValid},
			{"bool", jsonType, `{"` + f + `":false}`, 400, `{"` + f + `":["Not a valid string."]}`},
			{"object", jsonType, `{"` + f + `":{"token":"x"}}`, 400, `{"` + f + `":["Not a valid string."]}`},
			{"form blank", formType, f + `=`, 400, `{"` + f + `":["This field may not be blank."]}`},
			{"garbage", jsonType, `{"` + f + `":"not a token"}`, 401, tokenNotValid},
			{"garbage in a form", formType, f + `=not.a.token`, 401, tokenNotValid},
			{"alg none", jsonType, `{"` + f + `":"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9."}`, 401, tokenNotValid},
			{"opaque-looking", jsonType, `{"` + f + `":"rt1_AAAA"}`, 401, tokenNotValid},
			{"malformed JSON", jsonType, `{"` + f + `":`, 400, parseError("Expecting value: line 1 column " + strconv.Itoa(len(f)+5) + " (char " + strconv.Itoa(len(f)+4) + ")")},
			{"array body", jsonType, `[]`, 400, notDict("list")},
			{"text/plain", "text/plain", `{"` + f + `":"x"}`, 415, mediaType("text/plain")},
			{"oversized", jsonType, `{"` + f + `":"` + long + `"}`, 413, tooLarge},
		}
		for _, c := range cases {
			t.Run(ep.path+" "+c.name, func(t *testing.T) {
				for _, path := range []string{ep.path, strings.TrimSuffix(ep.path, "/")} {
					if c.status == 401 {
						wantToken(t, e.Do("POST", path, c.contentType, c.body), c.want)
					} else {
						want(t, e.Do("POST", path, c.contentType, c.body), c.status, c.want)
					}
				}
			})
		}
	}
}

// TestStandardEndpoints checks that the dialect's tokens are the engine's:
// introspectable and revocable through RFC 7662 and RFC 7009.
func TestStandardEndpoints(t *testing.T) {
	e := newEnv(t, simplejwt.DefaultConfig)
	rt, at := e.obtain()

	m := e.introspect(at)
	if m["active"] != true || m["sub"] != e.aliceID || m["iss"] != tokendtest.Issuer || m["jti"] == nil || m["sid"] == nil {
		t.Fatalf("introspection of the access token %v", m)
	}
	m = e.introspect(rt)
	if m["active"] != true || m["token_use"] != "refresh_token" || m["sub"] != e.aliceID {
		t.Fatalf("introspection of the refresh token %v", m)
	}

	// Revoking the access token denies it alone.
	e.revoke(at)
	if e.introspect(at)["active"] != false {
		t.Fatal("revoked access token is active")
	}
	r := e.refresh(rt)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	at2 := r.Str(t, "access")
	if e.introspect(at2)["active"] != true {
		t.Fatal("refreshed access token is inactive")
	}
	// Revoking the refresh token ends the session and its access tokens.
	e.revoke(rt)
	if e.introspect(at2)["active"] != false || e.introspect(rt)["active"] != false {
		t.Fatal("tokens of a revoked session are active")
	}
	wantToken(t, e.refresh(rt), blacklisted)
}

func TestConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c := simplejwt.DefaultConfig
		if c.Alg != "" || c.AccessTTL != 7*day || c.RefreshTTL != 30*day || c.Rotate {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("lifetimes and algorithm", func(t *testing.T) {
		cfg := simplejwt.Config{Alg: "EdDSA", AccessTTL: time.Hour, RefreshTTL: 2 * day}
		e := newEnv(t, cfg, func(o *tokendtest.Options) {
			o.Config = func(c *grant.Config) { c.ExtraAlgs = []string{"EdDSA"} }
		})
		rt, at := e.obtain()
		c, h := e.VerifyWithJWKS(at)
		if h.Algorithm != "EdDSA" || num(t, c["exp"])-num(t, c["iat"]) != 3600 {
			t.Fatalf("%v %v", h.Algorithm, c)
		}
		rc, rh := e.VerifyWithJWKSFor(rt, refreshAud)
		if rh.Algorithm != "EdDSA" || num(t, rc["exp"])-num(t, rc["iat"]) != int64((2*day).Seconds()) {
			t.Fatalf("%v %v", rh.Algorithm, rc)
		}
	})
}

// TestServerFailures checks that a failing store is a 500 with a generic
// body, logged, and that an overloaded password hasher is a 503.
func TestServerFailures(t *testing.T) {
	t.Run("store gone", func(t *testing.T) {
		e := newEnv(t, simplejwt.DefaultConfig)
		rt, at := e.obtain()
		if err := e.Store.Close(); err != nil {
			t.Fatal(err)
		}
		want(t, e.post("/api/v1/token/", js(map[string]string{"username": aliceName, "password": alicePassword})), 500, serverError)
		want(t, e.refresh(rt), 500, serverError)
		want(t, e.verify(at), 500, serverError)
		want(t, e.blacklist(rt), 500, serverError)
		if !strings.Contains(e.Logs(), "simplejwt request failed") {
			t.Fatalf("internal failure not logged:\n%s", e.Logs())
		}
		if strings.Contains(e.Logs(), at) || strings.Contains(e.Logs(), rt) {
			t.Fatal("a token was logged")
		}
	})
	t.Run("hasher overloaded", func(t *testing.T) {
		// Expensive hashes so the hasher's queue fills; an unknown user's
		// check costs a hash at the hasher's own parameters.
		p := secret.Params{MemoryKiB: 8 << 10, Time: 4, Threads: 1}
		e := newEnv(t, simplejwt.DefaultConfig, func(o *tokendtest.Options) { o.Params = &p })
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		const n = 150
		results := make(chan response, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(ctx, "POST", e.Srv.URL+"/api/v1/token/", strings.NewReader(`{"username":"nobody","password":"x"}`))
				req.Header.Set("Content-Type", jsonType)
				resp, err := e.Srv.Client().Do(req)
				if err != nil {
					return // cancelled once the answer was seen
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				results <- response{Status: resp.StatusCode, Header: resp.Header, Body: body}
			})
		}
		go func() { wg.Wait(); close(results) }()
		var got *response
		for r := range results {
			if r.Status == 503 {
				got = &r
				cancel() // the queued checks need not finish
				break
			}
			if r.Status != 400 {
				t.Errorf("unexpected %d %s", r.Status, r.Body)
			}
		}
		if got == nil {
			t.Fatal("no request was refused while the hasher was full")
		}
		want(t, *got, 503, unavailable)
		if ra := got.Header.Get("Retry-After"); ra == "" {
			t.Fatal("503 without Retry-After")
		}
		for range results {
		}
	})
}
