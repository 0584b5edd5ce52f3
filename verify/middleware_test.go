package verify_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokend/tokend/verify"
)

func TestMiddleware(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t)
	mux := http.NewServeMux()
	orders := func(w http.ResponseWriter, r *http.Request) {
		c, ok := verify.ClaimsFrom(r.Context())
		if !ok {
			http.Error(w, "no claims", 500)
			return
		}
		fmt.Fprintf(w, "orders of %s", c.Subject)
	}
	mux.Handle("GET /orders", verify.Middleware(v, verify.MiddlewareOptions{Scopes: []string{"orders:read"}})(http.HandlerFunc(orders)))
	mux.Handle("POST /orders", verify.Middleware(v, verify.MiddlewareOptions{Scopes: []string{"orders:write"}, Realm: "shop"})(http.HandlerFunc(orders)))
	mux.Handle("GET /me", verify.Middleware(v, verify.MiddlewareOptions{})(http.HandlerFunc(orders)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	read := is.appToken("orders:read")
	revoked := is.appToken("orders:read")
	is.revoke(revoked, is.appID, is.appSecret)
	eventually(t, v, revoked, verify.ErrRevoked, 5*time.Second)

	for _, tc := range []struct {
		name, method, path string
		auth               []string // Authorization header values
		status             int
		challenge          string // the WWW-Authenticate header, exactly
		body               string // a JSON error code, or the handler's text
	}{
		{"valid token", "GET", "/orders", []string{"Bearer " + read}, 200, "", "orders of " + is.appID},
		{"scheme in lower case", "GET", "/orders", []string{"bearer " + read}, 200, "", "orders of " + is.appID},
		{"no scope needed", "GET", "/me", []string{"Bearer " + read}, 200, "", "orders of " + is.appID},
		{"no token", "GET", "/orders", nil, 401, `Bearer realm="api", scope="orders:read"`, "unauthorized"},
		{"another scheme", "GET", "/orders", []string{"Basic YTpi"}, 401, `Bearer realm="api", scope="orders:read"`, "unauthorized"},
		{"invalid token", "GET", "/orders", []string{"Bearer " + read[:len(read)-3] + "AAA"}, 401,
			`Bearer realm="api", error="invalid_token", error_description="invalid signature"`, "invalid_token"},
		{"revoked token", "GET", "/orders", []string{"Bearer " + revoked}, 401,
			`Bearer realm="api", error="invalid_token", error_description="token revoked"`, "invalid_token"},
		{"missing scope", "POST", "/orders", []string{"Bearer " + read}, 403,
			`Bearer realm="shop", error="insufficient_scope", error_description="the token lacks a required scope", scope="orders:write"`, "insufficient_scope"},
		{"two tokens", "GET", "/orders", []string{"Bearer a b"}, 400,
			`Bearer realm="api", error="invalid_request", error_description="malformed bearer token"`, "invalid_request"},
		{"two headers", "GET", "/orders", []string{"Bearer " + read, "Bearer " + read}, 400,
			`Bearer realm="api", error="invalid_request", error_description="more than one Authorization header"`, "invalid_request"},
		{"empty bearer", "GET", "/orders", []string{"Bearer "}, 400,
			`Bearer realm="api", error="invalid_request", error_description="malformed bearer token"`, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			for _, a := range tc.auth {
				req.Header.Add("Authorization", a)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if tc.status == 200 {
				if b, _ := io.ReadAll(resp.Body); string(b) != tc.body {
					t.Errorf("body %q, want %q", b, tc.body)
				}
				return
			}
			var e map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e["error"] != tc.body || e["error_description"] == "" {
				t.Errorf("body %v (%v), want error %q", e, err, tc.body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
}
