package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzOAuthEndpoints sends arbitrary bodies, content types and
// Authorization headers to the token, revocation and introspection
// endpoints: every answer is a JSON object in the OAuth error format or a
// success, never a 500, and no error body carries a token.
func FuzzOAuthEndpoints(f *testing.F) {
	seeds := []struct{ path, ct, auth, body string }{
		{"/oauth2/token", form, "", "grant_type=client_credentials"},
		{"/oauth2/token", form, "Basic Zm9vOmJhcg==", "grant_type=password&username=alice&password=x"},
		{"/oauth2/token", "application/json", "", `{"grant_type":"refresh_token","refresh_token":"rt1_AAAA"}`},
		{"/oauth2/token", "application/json", "", `{"grant_type":["x"],"scope":5}`},
		{"/oauth2/token", form, "Basic !!!", "grant_type=%zz&&&=="},
		{"/oauth2/revoke", form, "Basic Zm9vOmJhcg==", "token=eyJhbGciOiJub25lIn0.e30."},
		{"/oauth2/introspect", "application/json; charset=utf-16", "Bearer x", `{"token":"a.b.c"}`},
		{"/oauth2/token", "multipart/form-data; boundary=x", "", "--x\r\n\r\n--x--"},
	}
	for _, s := range seeds {
		f.Add(s.path, s.ct, s.auth, s.body)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, path, ct, auth, body string) {
		switch path {
		case "/oauth2/token", "/oauth2/revoke", "/oauth2/introspect":
		default:
			path = "/oauth2/token"
		}
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		e.Handler.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if w.Code == http.StatusOK && path == "/oauth2/revoke" {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q", w.Body)
		}
		if w.Code != http.StatusOK {
			if _, ok := m["error"].(string); !ok {
				t.Fatalf("no error field: %s", w.Body)
			}
		}
	})
}

// FuzzBearer offers arbitrary strings as bearer tokens to /userinfo.
func FuzzBearer(f *testing.F) {
	for _, s := range []string{"eyJhbGciOiJFUzI1NiJ9.e30.AAAA", "a.b.c", "", "rt1_AAAA", strings.Repeat("A", 9000)} {
		f.Add(s)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, tok string) {
		req := httptest.NewRequest("GET", "/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		e.Handler.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("%d for %q", w.Code, tok)
		}
	})
}
