package dialect_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect"
	"github.com/tokend/tokend/dialect/atoti"
	"github.com/tokend/tokend/dialect/ocm"
	"github.com/tokend/tokend/dialect/simplejwt"
	"github.com/tokend/tokend/dialect/taiki"
	"github.com/tokend/tokend/grant"
)

// The fuzz targets send arbitrary requests to each dialect, in process:
// every answer must be a JSON object in the dialect's own format, never a
// 5xx, and no error body may carry a token (shared/spec/dialects.md:
// "never a 500, never a stack trace, never a token").

// A Taiki app with a known key and secret, so that seeds can reach the
// success path. The key is the client_app_id of the seed's example token.
const (
	seedKey    = "066ccb8b-a2df-7851-8000-dc413ace872e"
	seedSecret = "taiki-seed-secret-0123456789abcdef"
	seedUserID = "066ccbbd-8824-77e3-8000-0db9a8e05067" // the seed's taiki_user_id
	// seedJWT is the access token of the Taiki seed's example answer
	// (HS256, signed by Taiki, not by us).
	seedJWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoxNzI4MjkzNDY0LCJpYXQiOjE3MjQ2OTM0NjQsImp0aSI6ImI3OTgzMjQwNTE4YzRjNTI4Y2UyZGI0ZWNjMjgwMWU0IiwiY2xpZW50X2FwcF9pZCI6IjA2NmNjYjhiLWEyZGYtNzg1MS04MDAwLWRjNDEzYWNlODcyZSIsInRhaWtpX3VzZXJfaWQiOiIwNjZjY2JiZC04ODI0LTc3ZTMtODAwMC0wZGI5YThlMDUwNjcifQ.S2-kuFx-P4JTpyuOszDz_gXRLCHj0EKpUvUft9n3me0"
)

// fuzzEnv is the server of a fuzz target: every dialect, no limits (so
// that answers do not depend on what ran before), and the seed Taiki app.
func fuzzEnv(f *testing.F) *env {
	f.Helper()
	e := newEnv(f, grant.Limits{})
	err := e.Store.CreateClient(context.Background(), &tokend.ClientApp{
		ID: seedKey, Name: "seed", SecretHash: e.Engine.HashClientSecret(seedSecret),
		Grants: []string{tokend.GrantClientCredentials}, Mode: tokend.ModeProduction, CreatedAt: time.Now(),
	})
	if err != nil {
		f.Fatal(err)
	}
	return e
}

// Nasty bodies every JSON target is seeded with.
var nastyBodies = []string{
	"", " ", "null", "0", "-1e999", "true", `"a string"`, "[]", "[{}]", "{", "}", "{}", "{}{}", `{"a":1} trailing`,
	`{"a":`, `{"a":"\ud800"}`, "{\"a\":\"\xff\xfe\"}", "\ufeff{}", `{"__proto__":{}}`,
	strings.Repeat("[", 20000) + strings.Repeat("]", 20000),
	`{"x":"` + strings.Repeat("A", 70000) + `"}`,
	"\x00\x01\x02",
}

var contentTypes = []string{
	"application/json", "application/json; charset=utf-8", "application/vnd.api+json", "APPLICATION/JSON",
	"application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", "", ";;;",
	"application/json; charset=utf-16",
}

// serve runs one request through the whole server and checks what every
// dialect owes: no 5xx, a JSON object, and no token in an error body. It
// returns the decoded body.
func serve(t *testing.T, e *env, req *http.Request) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	e.Handler.ServeHTTP(w, req)
	if w.Code >= 500 {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL.Path, w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != jsonType {
		t.Fatalf("%d with Content-Type %q", w.Code, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m == nil {
		t.Fatalf("%d: body is not a JSON object: %q", w.Code, w.Body)
	}
	if w.Code != http.StatusOK && (strings.Contains(w.Body.String(), "eyJ") || strings.Contains(w.Body.String(), "rt1_")) {
		t.Fatalf("%d: error body carries a token: %s", w.Code, w.Body)
	}
	return w, m
}

// wantStatus fails unless code is one of ok.
func wantStatus(t *testing.T, code int, body string, ok ...int) {
	t.Helper()
	for _, c := range ok {
		if code == c {
			return
		}
	}
	t.Fatalf("status %d (%s), want one of %v", code, body, ok)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// FuzzAtoti sends arbitrary Authorization headers to Atoti's endpoint: the
// answer is a 200 {"token": ...} (for a Bearer or Jwt, the very token
// presented) or a 401 {} with the Basic challenge.
func FuzzAtoti(f *testing.F) {
	for _, s := range []string{
		basic(aliceName, alicePassword),
		"basic " + b64(aliceName+":"+alicePassword),
		"BASIC   " + b64(aliceName+":"+alicePassword) + "  ",
		basic(aliceName, "wrong"),
		basic("", ""), basic("", alicePassword), basic(aliceName, ""),
		"Basic " + b64("no colon"), "Basic " + b64(":"), "Basic " + b64(aliceName+":"+alicePassword+"\x00"),
		"Basic !!!", "Basic", "Basic ", "Basic " + strings.Repeat("QUFB", 5000),
		basic(seedKey, seedSecret),
		"Bearer " + seedJWT, "Jwt " + seedJWT, "jwt " + seedJWT, "BEARER " + seedJWT, "Bearer  " + seedJWT + " ",
		"Bearer", "Bearer ", "Bearer a.b.c", "Bearer ..", "Bearer eyJhbGciOiJub25lIn0.e30.", "Bearer rt1_AAAA",
		"Bearer " + strings.Repeat("A", 10000), "Bearer " + seedJWT + ", Basic " + b64(aliceName+":"+alicePassword),
		"Negotiate YIIB", "Digest username=\"alice\"", "", " ", "\x00", "Bearer \xff\xfe", "Bearer 💥.💥.💥",
	} {
		f.Add(s)
	}
	e := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, auth string) {
		req := httptest.NewRequest("GET", atoti.Path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w, m := serve(t, e, req)
		wantStatus(t, w.Code, w.Body.String(), 200, 401)
		if w.Code == 401 {
			if w.Body.String() != "{}" {
				t.Fatalf("401 body %q, want {}", w.Body)
			}
			if wa := w.Header().Get("WWW-Authenticate"); wa != atotiChallenge {
				t.Fatalf("WWW-Authenticate %q", wa)
			}
			return
		}
		tok, _ := m["token"].(string)
		if len(m) != 1 || tok == "" {
			t.Fatalf("200 body %s, want {\"token\": ...}", w.Body)
		}
		if raw, ok := dialect.Bearer(auth, "Bearer", "Jwt"); ok && raw != tok {
			t.Fatalf("a JWT caller got another token back")
		}
	})
}

var simplejwtPaths = []string{simplejwt.PathObtain, simplejwt.PathRefresh, simplejwt.PathVerify, simplejwt.PathBlacklist}

// FuzzSimpleJWT sends arbitrary bodies and content types to the four
// simplejwt endpoints (path: which%4, without the trailing slash when
// which&4): every answer is Django REST framework's, a {"detail": ...} or
// per-field lists of messages.
func FuzzSimpleJWT(f *testing.F) {
	obtain := js(map[string]string{"username": aliceName, "password": alicePassword})
	// The seed's example requests, as its Go and Python snippets send them.
	f.Add(uint8(0), "application/json", obtain)
	f.Add(uint8(0), "application/json", "{\n \"username\": \"alice.williams\",\n \"password\": \"S3cur3P@ssw0rd!\"\n}")
	f.Add(uint8(4), "application/json", obtain)
	f.Add(uint8(0), formType, "username=alice.williams&password=S3cur3P%40ssw0rd%21")
	f.Add(uint8(0), formType, "username=%zz&password")
	f.Add(uint8(0), "application/json", `{"username":"alice.williams","password":"wrong"}`)
	f.Add(uint8(0), "application/json", `{"username":null,"password":5}`)
	f.Add(uint8(0), "application/json", `{"username":"  ","password":""}`)
	f.Add(uint8(0), "application/json", `{"username":["alice.williams"],"password":{"a":1}}`)
	f.Add(uint8(0), "application/json", `{"username":"alice.williams","username":"x","password":"S3cur3P@ssw0rd!"}`)
	f.Add(uint8(1), "application/json", `{"refresh":"`+seedJWT+`"}`)
	f.Add(uint8(1), "application/json", `{"refresh":"rt1_AAAA","access":"x"}`)
	f.Add(uint8(1), "application/json", `{"refresh":null}`)
	f.Add(uint8(5), "application/json", `{"refresh":12345678901234567890}`)
	f.Add(uint8(2), "application/json", `{"token":"`+seedJWT+`"}`)
	f.Add(uint8(2), "application/json", `{"token":"eyJhbGciOiJub25lIn0.e30."}`)
	f.Add(uint8(6), formType, "token=a.b.c")
	f.Add(uint8(3), "application/json", `{"refresh":"`+seedJWT+`"}`)
	f.Add(uint8(7), "application/json", `{"refresh":""}`)
	for i, b := range nastyBodies {
		f.Add(uint8(i), contentTypes[i%len(contentTypes)], b)
	}
	e := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, which uint8, ct, body string) {
		path := simplejwtPaths[which%4]
		if which&4 != 0 {
			path = strings.TrimSuffix(path, "/")
		}
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		w, m := serve(t, e, req)
		wantStatus(t, w.Code, w.Body.String(), 200, 400, 401, 413, 415)
		if w.Code == 200 {
			switch which % 4 {
			case 0:
				wantFields(t, m, "refresh", "access")
			case 1:
				wantFields(t, m, "access")
			default:
				if len(m) != 0 {
					t.Fatalf("200 body %s, want {}", w.Body)
				}
			}
			return
		}
		if d, ok := m["detail"]; ok {
			if _, isStr := d.(string); !isStr || len(m) > 2 {
				t.Fatalf("error body %s", w.Body)
			}
			if c, ok := m["code"]; ok && (c != "token_not_valid" || len(m) != 2) {
				t.Fatalf("error body %s", w.Body)
			}
			return
		}
		// Field errors: {"field": ["message"]} for fields of the request.
		if w.Code != 400 || len(m) == 0 {
			t.Fatalf("%d body %s", w.Code, w.Body)
		}
		for k, v := range m {
			msgs, ok := v.([]any)
			if !ok || len(msgs) != 1 {
				t.Fatalf("field %q: %v", k, v)
			}
			if _, ok := msgs[0].(string); !ok {
				t.Fatalf("field %q: %v", k, v)
			}
			switch k {
			case "username", "password", "refresh", "token", "non_field_errors":
			default:
				t.Fatalf("an error for field %q, which no endpoint has", k)
			}
		}
	})
}

// wantFields checks that m has exactly the given keys, each a non-empty string.
func wantFields(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	if len(m) != len(keys) {
		t.Fatalf("body %v, want the fields %v", m, keys)
	}
	for _, k := range keys {
		if s, _ := m[k].(string); s == "" {
			t.Fatalf("body %v, want the fields %v", m, keys)
		}
	}
}

// ocmTitles are DESIGN.md's "OCM titles", with the statuses only a
// malformed request reaches.
var ocmTitles = map[int]string{
	400: "Illegal Argument", 401: "Unauthorized", 403: "Forbidden", 405: "Method Not Allowed", 413: "Payload Too Large",
}

// FuzzOCM sends arbitrary Authorization headers, content types and bodies
// to OCM's endpoint: every error is an ExceptionDetail whose status and
// title match the answer's.
func FuzzOCM(f *testing.F) {
	alice := basic(aliceName, alicePassword)
	// The seed's requests: Basic with an empty body, {}, or a refresh token.
	f.Add(alice, "", "")
	f.Add(alice, "application/json", "{}")
	f.Add(alice, "application/json", `{"refreshToken":null}`)
	f.Add("", "application/json", `{"refreshToken":"rt1_AAAA"}`)
	f.Add(alice, "application/json", `{"refreshToken":"rt1_AAAA"}`)
	f.Add("Bearer "+seedJWT, "application/json", `{"refreshToken":"`+seedJWT+`"}`)
	f.Add("", "application/json", `{"refreshToken":""}`)
	f.Add("", "application/json", `{"refreshToken":5}`)
	f.Add("", "application/json", `{"refreshToken":["a"]}`)
	f.Add("", "application/json", "{}")
	f.Add(basic(seedKey, seedSecret), "application/json", "{}")
	f.Add(basic(seedKey, "wrong"), "application/json", "{}")
	f.Add(basic(aliceName, "wrong"), "application/json", "{}")
	f.Add("Basic !!!", "application/json", "{}")
	f.Add("Basic "+b64("nocolon"), "", "")
	f.Add(alice, "text/plain", "{}")
	f.Add(alice, formType, "refreshToken=rt1_AAAA")
	for i, b := range nastyBodies {
		f.Add([]string{alice, "", "Basic", "bAsIc " + b64(aliceName+":"+alicePassword)}[i%4], contentTypes[i%len(contentTypes)], b)
	}
	e := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, auth, ct, body string) {
		req := httptest.NewRequest("POST", ocm.Path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w, m := serve(t, e, req)
		wantStatus(t, w.Code, w.Body.String(), 200, 400, 401, 403, 413)
		if w.Code == 200 {
			if len(m) != 4 || m["tokenType"] != "Bearer" {
				t.Fatalf("200 body %s", w.Body)
			}
			for _, k := range []string{"accessToken", "refreshToken"} {
				if s, _ := m[k].(string); s == "" {
					t.Fatalf("200 body %s", w.Body)
				}
			}
			return
		}
		if title, _ := m["title"].(string); title != ocmTitles[w.Code] {
			t.Fatalf("%d with title %q", w.Code, m["title"])
		}
		if status, _ := m["status"].(float64); int(status) != w.Code {
			t.Fatalf("%d with status %v", w.Code, m["status"])
		}
		for _, k := range []string{"type", "detail", "o:errorCode"} {
			if s, _ := m[k].(string); s == "" {
				t.Fatalf("%d without %q: %s", w.Code, k, w.Body)
			}
		}
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") != ocmChallenge {
			t.Fatalf("401 without the Basic challenge")
		}
	})
}

// FuzzTaiki sends arbitrary content types and bodies to Taiki's endpoint:
// every error is {"error": ..., "error_description": ...}.
func FuzzTaiki(f *testing.F) {
	good := js(map[string]string{"api_key": seedKey, "api_secret": seedSecret})
	f.Add("application/json", good)
	f.Add("application/json", `{"api_key":"`+seedKey+`","api_secret":"`+seedSecret+`","taiki_user_id":null}`)
	f.Add("application/json", `{"api_key":"`+seedKey+`","api_secret":"`+seedSecret+`","taiki_user_id":""}`)
	f.Add("application/json", `{"api_key":"`+seedKey+`","api_secret":"`+seedSecret+`","taiki_user_id":"`+seedUserID+`"}`)
	f.Add("application/json", `{"api_key":"`+seedKey+`","api_secret":"`+seedSecret+`","taiki_user_id":5}`)
	f.Add("application/json", `{"api_key":"`+seedKey+`","api_secret":"wrong"}`)
	f.Add("application/json", `{"api_key":"`+strings.ToUpper(seedKey)+`","api_secret":"`+seedSecret+`"}`)
	f.Add("application/json", `{"api_key":"{`+seedKey+`}","api_secret":"`+seedSecret+`"}`)
	f.Add("application/json", `{"api_key":"not-a-uuid","api_secret":"x"}`)
	f.Add("application/json", `{"api_key":"`+seedKey+`"}`)
	f.Add("application/json", `{"api_key":null,"api_secret":null}`)
	f.Add("application/json", `{"api_key":1,"api_secret":true}`)
	f.Add("application/json", `{"api_key":"","api_secret":""}`)
	f.Add(formType, "api_key="+seedKey+"&api_secret="+seedSecret)
	f.Add("", good)
	for i, b := range nastyBodies {
		f.Add(contentTypes[i%len(contentTypes)], b)
	}
	e := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, ct, body string) {
		req := httptest.NewRequest("POST", taiki.Path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		w, m := serve(t, e, req)
		wantStatus(t, w.Code, w.Body.String(), 200, 400, 401, 413)
		if w.Code == 200 {
			wantFields(t, m, "access_token", "taiki_user_id")
			return
		}
		code, _ := m["error"].(string)
		desc, _ := m["error_description"].(string)
		if len(m) != 2 || code == "" || desc == "" {
			t.Fatalf("%d body %s", w.Code, w.Body)
		}
		want := map[int]string{400: "invalid_request", 401: "invalid_client", 413: "invalid_request"}[w.Code]
		if code != want {
			t.Fatalf("%d with error %q, want %q", w.Code, code, want)
		}
	})
}
