package tokendtest_test

import (
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tokend/tokend/tokendtest"
)

// fake answers every request with a fixed response, so that each case
// below shows one way an answer can depart from the document.
type fake struct {
	status int
	header map[string]string
	body   string
	gzip   bool
}

func (f fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range f.header {
		w.Header().Set(k, v)
	}
	if f.gzip {
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(f.status)
		zw := gzip.NewWriter(w)
		zw.Write([]byte(f.body))
		zw.Close()
		return
	}
	w.WriteHeader(f.status)
	w.Write([]byte(f.body))
}

const (
	jsonCT      = "application/json"
	tokenBody   = `{"access_token":"x.y.z","token_type":"Bearer","expires_in":900}`
	formCT      = "application/x-www-form-urlencoded"
	notFoundRaw = `{"error":"not_found","error_description":"no such endpoint"}`
)

// Examples of the admin API's objects, from its contract (ADMIN-API.md).
const (
	userJSON = `{"id":"0193","username":"alice","roles":["tokend.admin"],"claims":{"dept":"ops"},"disabled":false,"client_id":null,` +
		`"created_at":"2026-11-30T15:04:05Z","last_login_at":null,"last_refresh_at":null}`
	clientJSON = `{"id":"c1","name":"ops","public":false,"grants":["client_credentials"],"scopes":["tokend.admin"],"mode":"production",` +
		`"access_ttl":0,"disabled":false,"created_at":"2026-11-30T15:04:05Z","previous_secret_expires_at":null}`
	auditJSON = `{"items":[{"seq":12,"at":"2026-11-30T15:04:05Z","event":"user.created","subject":"alice","client_id":"","dialect":"",` +
		`"ip":"127.0.0.1","outcome":"success","detail":"","count":1,"actor":"cli"}],"next_cursor":"abc"}`
)

// Answers of the simplejwt dialect and the discovery document.
const (
	sjVerifyMeta = `{"name":"Token Verify","description":"d","renders":["application/json"],` +
		`"parses":["application/json","application/x-www-form-urlencoded","multipart/form-data"],` +
		`"actions":{"POST":{"token":{"type":"string","required":true,"read_only":false,"label":"Token"}}}}`
	sjNotAcceptable = `{"detail":"Could not satisfy the request Accept header."}`
	sjBadToken      = `{"detail":"Token is blacklisted","code":"token_not_valid"}`
	sjMultipart     = "--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n" +
		"--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\npw\r\n" +
		"--b\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\nx\r\n--b--\r\n"
	discovery = `{"issuer":"http://t","token_endpoint":"http://t/oauth2/token","jwks_uri":"http://t/.well-known/jwks.json",` +
		`"revocation_endpoint":"http://t/oauth2/revoke","introspection_endpoint":"http://t/oauth2/introspect","userinfo_endpoint":"http://t/userinfo",` +
		`"grant_types_supported":["password"],"response_types_supported":[],"token_endpoint_auth_methods_supported":["none"],` +
		`"revocation_endpoint_auth_methods_supported":["none"],"introspection_endpoint_auth_methods_supported":["client_secret_basic"],` +
		`"id_token_signing_alg_values_supported":["ES256"],"subject_types_supported":["public"]}`
	symmetric = `{"simplejwt":{"alg":"HS256","key":"symmetric: shared with the dialect's verifiers, never published","published_in_jwks":false,` +
		`"accepted_at":["simplejwt endpoints","introspection_endpoint","revocation_endpoint"]}}`
)

var (
	withETag  = map[string]string{"Content-Type": jsonCT, "ETag": `"v1"`}
	problemCT = map[string]string{"Content-Type": "application/problem+json"}
	js        = map[string]string{"Content-Type": jsonCT}
	noStore   = map[string]string{"Content-Type": jsonCT, "Cache-Control": "no-store", "Pragma": "no-cache"}
)

// TestContractChecksExchanges sends real requests to servers that answer
// the way a drifted tokend would, through CheckTransport, and expects each
// departure from the document to be reported (and conforming answers not
// to be).
func TestContractChecksExchanges(t *testing.T) {
	cases := []struct {
		name                   string
		method, path, ct, body string
		header                 map[string]string
		answer                 fake
		want                   string // "" for no violation, else a part of it
	}{
		{"conforming health", "GET", "/healthz", "", "", nil, fake{200, js, `{"status":"ok"}`, false}, ""},
		{"body off schema", "GET", "/healthz", "", "", nil, fake{200, js, `{"status":"fine"}`, false}, "doesn't match schema"},
		{"extra field", "GET", "/healthz", "", "", nil, fake{200, js, `{"status":"ok","uptime":3}`, false}, "doesn't match schema"},
		{"undocumented status", "GET", "/healthz", "", "", nil, fake{201, js, `{"status":"ok"}`, false}, "status 201 is not documented"},
		{"undocumented content type", "GET", "/healthz", "", "", nil, fake{200, map[string]string{"Content-Type": "text/html"}, `<p>ok</p>`, false}, "Content-Type"},
		{"required header missing", "GET", "/readyz", "", "", nil, fake{503, js, `{"status":"unavailable"}`, false}, `"Retry-After" missing`},
		{"required header present", "GET", "/readyz", "", "", nil, fake{503, map[string]string{"Content-Type": jsonCT, "Retry-After": "1"}, `{"status":"unavailable"}`, false}, ""},
		{"header off schema", "GET", "/readyz", "", "", nil, fake{503, map[string]string{"Content-Type": jsonCT, "Retry-After": "soon"}, `{"status":"unavailable"}`, false}, "Retry-After"},
		{"body where none is documented", "POST", "/oauth2/revoke", formCT, "token=t&client_id=c", nil, fake{200, map[string]string{"Cache-Control": "no-store", "Content-Type": jsonCT}, `{"revoked":true}`, false}, "documented without a body"},
		{"private key in the JWKS", "GET", "/.well-known/jwks.json", "", "", nil,
			fake{200, map[string]string{"Content-Type": jsonCT, "ETag": `"e"`, "Cache-Control": "public, max-age=60"}, `{"keys":[{"kty":"EC","kid":"k","alg":"ES256","use":"sig","crv":"P-256","x":"a","y":"b","d":"secret"}]}`, false}, "doesn't match schema"},
		{"error code off the list", "POST", "/oauth2/token", formCT, "grant_type=password", nil, fake{400, noStore, `{"error":"oops","error_description":"d"}`, false}, "doesn't match schema"},
		{"accepted request off the document", "POST", "/oauth2/token", formCT, "username=alice", nil, fake{200, noStore, tokenBody, false}, "request accepted with 200"},
		{"accepted request on the document", "POST", "/oauth2/token", formCT, "grant_type=client_credentials", nil, fake{200, noStore, tokenBody, false}, ""},
		{"refused request is not checked", "POST", "/oauth2/token", formCT, "username=alice", nil, fake{400, noStore, `{"error":"invalid_request","error_description":"grant_type is required"}`, false}, ""},
		{"unknown path served", "GET", "/nowhere", "", "", nil, fake{200, js, `{}`, false}, "the document has no path /nowhere"},
		{"unknown path 404", "GET", "/nowhere", "", "", nil, fake{404, js, notFoundRaw, false}, ""},
		{"unknown path 404 off schema", "GET", "/nowhere", "", "", nil, fake{404, js, `{"message":"nope"}`, false}, "does not match NotFound"},
		{"unknown path 404 with another error", "GET", "/nowhere", "", "", nil, fake{404, js, `{"error":"gone","error_description":"no such endpoint"}`, false}, "does not match NotFound"},
		{"other method, right Allow", "DELETE", "/oauth2/token", "", "", nil, fake{405, map[string]string{"Content-Type": jsonCT, "Allow": "POST"}, `{}`, false}, ""},
		{"other method, wrong Allow", "DELETE", "/userinfo", "", "", nil, fake{405, map[string]string{"Content-Type": jsonCT, "Allow": "GET"}, `{}`, false}, "the document has [GET POST]"},
		{"other method served", "PUT", "/healthz", "", "", nil, fake{200, js, `{"status":"ok"}`, false}, "want 405 or 404"},
		{"HEAD of a GET route", "HEAD", "/healthz", "", "", nil, fake{200, js, ``, false}, ""},
		{"prefixed taiki path", "POST", "/sandbox/api/token", jsonCT, `{"api_key":"0196e1b2-0d1c-7a4e-9c1b-2f4e6a8b9c0d","api_secret":"s"}`, nil,
			fake{200, map[string]string{"Content-Type": jsonCT, "Cache-Control": "no-store"}, `{"access_token":"t","taiki_user_id":"u"}`, false}, ""},
		{"prefixed taiki path off schema", "POST", "/v1/live/api/token/", jsonCT, `{}`, nil,
			fake{400, map[string]string{"Content-Type": jsonCT, "Cache-Control": "no-store"}, `{"error":"invalid_request"}`, false}, "doesn't match schema"},
		{"gzip metrics", "GET", "/metrics", "", "", map[string]string{"Accept-Encoding": "gzip"}, fake{200, map[string]string{"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}, "up 1\n", true}, ""},
		{"net/http's own 431", "GET", "/healthz", "", "", nil, fake{431, map[string]string{"Content-Type": "text/plain; charset=utf-8"}, "431 Request Header Fields Too Large", false}, ""},

		// The simplejwt dialect, which answers as Django REST framework does.
		{"simplejwt metadata", "OPTIONS", "/api/v1/token/verify/", "", "", nil, fake{200, js, sjVerifyMeta, false}, ""},
		{"simplejwt metadata of another view", "OPTIONS", "/api/v1/token/refresh", "", "", nil, fake{200, js, sjVerifyMeta, false}, "doesn't match schema"},
		{"simplejwt metadata with a field off the view", "OPTIONS", "/api/v1/token/verify", "", "", nil,
			fake{200, js, strings.Replace(sjVerifyMeta, `"POST":{`, `"POST":{"access":{"type":"string","required":false,"read_only":true,"label":"Access"},`, 1), false}, "doesn't match schema"},
		{"simplejwt 405 naming OPTIONS", "DELETE", "/api/v1/token/", "", "", nil, fake{405, map[string]string{"Content-Type": jsonCT, "Allow": "POST, OPTIONS"}, `{"detail":"Method \"DELETE\" not allowed."}`, false}, ""},
		{"simplejwt 405 without OPTIONS", "DELETE", "/api/v1/token/", "", "", nil, fake{405, map[string]string{"Content-Type": jsonCT, "Allow": "POST"}, `{"detail":"Method \"DELETE\" not allowed."}`, false}, "the document has [OPTIONS POST]"},
		{"simplejwt 406 to another method", "GET", "/api/v1/token", "", "", map[string]string{"Accept": "text/plain"}, fake{406, js, sjNotAcceptable, false}, ""},
		{"simplejwt 406 off schema", "GET", "/api/v1/token", "", "", nil, fake{406, js, `{"detail":"no"}`, false}, "does not match the 406"},
		{"406 where no operation has one", "GET", "/oauth2/token", "", "", nil, fake{406, js, sjNotAcceptable, false}, "no operation of the path documents 406"},
		{"simplejwt bad token", "POST", "/api/v1/token/refresh/", jsonCT, `{"refresh":"x"}`, nil,
			fake{401, map[string]string{"Content-Type": jsonCT, "Cache-Control": "no-store", "WWW-Authenticate": `Bearer realm="api"`}, sjBadToken, false}, ""},
		{"simplejwt bad token without challenge", "POST", "/api/v1/token/refresh/", jsonCT, `{"refresh":"x"}`, nil, fake{401, noStore, sjBadToken, false}, `"WWW-Authenticate" missing`},
		{"simplejwt bad token with another detail", "POST", "/api/v1/token/verify", jsonCT, `{"token":"x"}`, nil,
			fake{401, map[string]string{"Content-Type": jsonCT, "Cache-Control": "no-store", "WWW-Authenticate": `Bearer realm="api"`}, `{"detail":"Given token not valid for any token type","code":"token_not_valid"}`, false}, "doesn't match schema"},
		{"simplejwt non-object body", "POST", "/api/v1/token/", jsonCT, `[]`, nil,
			fake{400, noStore, `{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}`, false}, ""},
		{"simplejwt multipart login", "POST", "/api/v1/token/", "multipart/form-data; boundary=b", sjMultipart, nil, fake{200, noStore, `{"refresh":"r","access":"a"}`, false}, ""},
		{"simplejwt number as username", "POST", "/api/v1/token", jsonCT, `{"username":42,"password":"pw"}`, nil, fake{200, noStore, `{"refresh":"r","access":"a"}`, false}, ""},
		{"simplejwt list as username accepted", "POST", "/api/v1/token", jsonCT, `{"username":[],"password":"pw"}`, nil, fake{200, noStore, `{"refresh":"r","access":"a"}`, false}, "request accepted with 200"},
		{"discovery with a symmetric key", "GET", "/.well-known/openid-configuration", "", "", nil,
			fake{200, map[string]string{"Content-Type": jsonCT, "Cache-Control": "public, max-age=3600"}, strings.Replace(discovery, `}`, `,"tokend_symmetric_signing":`+symmetric+`}`, 1), false}, ""},
		{"discovery publishing a symmetric key", "GET", "/.well-known/openid-configuration", "", "", nil,
			fake{200, map[string]string{"Content-Type": jsonCT, "Cache-Control": "public, max-age=3600"},
				strings.Replace(discovery, `}`, `,"tokend_symmetric_signing":`+strings.Replace(symmetric, `"published_in_jwks":false`, `"published_in_jwks":true`, 1)+`}`, 1), false}, "doesn't match schema"},

		// The admin API, with the examples of its contract (ADMIN-API.md).
		{"admin user", "GET", "/admin/v1/users/0193", "", "", nil, fake{200, withETag, userJSON, false}, ""},
		{"admin user without ETag", "GET", "/admin/v1/users/0193", "", "", nil, fake{200, js, userJSON, false}, `"ETag" missing`},
		{"admin user with a field off the contract", "GET", "/admin/v1/users/0193", "", "", nil,
			fake{200, withETag, strings.Replace(userJSON, `"disabled"`, `"password_hash":"x","disabled"`, 1), false}, "doesn't match schema"},
		{"admin client created", "POST", "/admin/v1/clients", jsonCT, `{"name":"ops","grants":["client_credentials"],"scopes":["tokend.admin"]}`, nil,
			fake{201, withETag, strings.Replace(clientJSON, `"disabled"`, `"client_secret":"s3cr3t","disabled"`, 1), false}, ""},
		{"admin client leaks its secret", "GET", "/admin/v1/clients/c1", "", "", nil,
			fake{200, withETag, strings.Replace(clientJSON, `"disabled"`, `"client_secret":"s3cr3t","disabled"`, 1), false}, "doesn't match schema"},
		{"admin client", "GET", "/admin/v1/clients/c1", "", "", nil, fake{200, withETag, clientJSON, false}, ""},
		{"admin reserved claim accepted", "POST", "/admin/v1/users", jsonCT, `{"username":"bob","claims":{"sub":"admin"}}`, nil,
			fake{201, map[string]string{"Content-Type": jsonCT, "ETag": `"1"`, "Location": "/admin/v1/users/0193"}, userJSON, false}, "request accepted with 201"},
		{"admin 401 without WWW-Authenticate", "GET", "/admin/v1/keys", "", "", nil,
			fake{401, problemCT, `{"type":"about:blank","title":"Unauthorized","status":401}`, false}, `"WWW-Authenticate" missing`},
		{"admin 403", "DELETE", "/admin/v1/sessions/s1", "", "", nil,
			fake{403, map[string]string{"Content-Type": "application/problem+json", "WWW-Authenticate": `Bearer error="insufficient_scope", scope="tokend.admin"`},
				`{"type":"https://tokend.dev/problems/insufficient-scope","title":"Forbidden","status":403,"detail":"needs tokend.admin"}`, false}, ""},
		{"admin problem with the wrong status", "PATCH", "/admin/v1/users/0193", "", "", nil,
			fake{412, problemCT, `{"type":"about:blank","title":"Precondition Failed","status":409}`, false}, "doesn't match schema"},
		{"admin validation problem", "POST", "/admin/v1/users", jsonCT, `{"username":""}`, nil,
			fake{400, problemCT, `{"type":"https://tokend.dev/problems/validation","title":"Invalid request","status":400,"errors":[{"field":"username","detail":"required"}]}`, false}, ""},
		{"admin audit page", "GET", "/admin/v1/audit", "", "", nil, fake{200, js, auditJSON, false}, ""},
		{"admin keys", "GET", "/admin/v1/keys", "", "", nil,
			fake{200, js, `{"items":[{"kid":"k1","alg":"ES256","status":"signing","created_at":"2026-11-30T15:04:05Z","activates_at":"2026-11-30T15:04:05Z","revoked_at":null}]}`, false}, ""},
		{"admin API switched off", "GET", "/admin/v1/users", "", "", nil, fake{404, js, notFoundRaw, false}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.answer)
			defer srv.Close()
			var mu sync.Mutex
			var got []string
			client := &http.Client{Transport: tokendtest.CheckTransport(nil, func(err error) {
				mu.Lock()
				got = append(got, err.Error())
				mu.Unlock()
			})}
			req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.ct != "" {
				req.Header.Set("Content-Type", c.ct)
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case c.want == "" && len(got) > 0:
				t.Fatalf("a conforming exchange was reported: %v", got)
			case c.want != "" && len(got) != 1:
				t.Fatalf("want one violation about %q, got %d: %v", c.want, len(got), got)
			case c.want != "" && !strings.Contains(got[0], c.want):
				t.Fatalf("violation does not mention %q:\n%s", c.want, got[0])
			}
		})
	}
}

// failRecorder is a testing.TB that keeps what a check reports instead of
// failing the test.
type failRecorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (f *failRecorder) Error(args ...any) {
	f.mu.Lock()
	f.errs = append(f.errs, fmt.Sprint(args...))
	f.mu.Unlock()
}

// TestCheckHandlerReports checks the server-side hook that tokendtest.New
// installs: an answer off the document fails the test, a conforming one
// does not, and the client gets the answer unchanged either way.
func TestCheckHandlerReports(t *testing.T) {
	rec := &failRecorder{TB: t}
	srv := httptest.NewServer(tokendtest.CheckHandler(rec, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", jsonCT)
		if r.URL.Path == "/readyz" {
			w.WriteHeader(503) // no Retry-After
			w.Write([]byte(`{"status":"unavailable"}`))
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	})))
	defer srv.Close()
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "GET /readyz answered 503") || !strings.Contains(rec.errs[0], "Retry-After") {
		t.Fatalf("want one violation about /readyz's Retry-After, got %q", rec.errs)
	}
}

// TestCoverage checks the comparison of a server's routes with the
// document: a route served but not described, and a route described but
// not served, are both found.
func TestCoverage(t *testing.T) {
	c, err := tokendtest.LoadContract()
	if err != nil {
		t.Fatal(err)
	}
	// The standard routes, as httpapi.Server registers them.
	base := []string{
		"POST /oauth2/token", "POST /oauth2/revoke", "POST /oauth2/introspect", "/oauth2/token", "/oauth2/revoke", "/oauth2/introspect",
		"GET /.well-known/jwks.json", "GET /.well-known/oauth-authorization-server", "GET /.well-known/openid-configuration",
		"GET /userinfo", "POST /userinfo", "/userinfo", "GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json", "/healthz", "/",
		"GET /activeviam/jwt/rest/v3/token", "/activeviam/jwt/rest/v3/token", "GET /activeviam/jwt/rest/v3/token/{$}", "/activeviam/jwt/rest/v3/token/{$}",
		"GET /admin/v1/users/{user}", "/admin/v1/",
		"POST /api/v1/token", "/api/v1/token", "POST /api/v1/token/{$}", "/api/v1/token/{$}", "POST /api/v1/token/verify",
	}
	undocumented, unserved := c.Coverage(base)
	if len(undocumented) != 0 {
		t.Fatalf("documented routes reported as undocumented: %v", undocumented)
	}
	// OPTIONS is served by a path's pattern without a method (simplejwt's
	// metadata), and only there.
	for _, op := range []string{"POST /oauth2/token", "GET /openapi.json", "GET /activeviam/jwt/rest/v3/token/", "GET /admin/v1/users/{id}",
		"OPTIONS /api/v1/token", "OPTIONS /api/v1/token/", "POST /api/v1/token/verify"} {
		if slices.Contains(unserved, op) {
			t.Errorf("%s is served, yet reported unserved", op)
		}
	}
	for _, op := range []string{"POST /api/token", "POST /api/token/", "GET /admin/v1/users", "DELETE /admin/v1/users/{id}", "OPTIONS /api/v1/token/verify"} {
		if !slices.Contains(unserved, op) {
			t.Errorf("%s is not served, yet not reported: %v", op, unserved)
		}
	}
	extra := []string{"GET /oauth2/token", "POST /debug/vars", "/debug/", "GET /api/v1/token/{rest...}", "example.com/healthz"}
	undocumented, _ = c.Coverage(append(base, extra...))
	if !slices.Equal(undocumented, extra) {
		t.Fatalf("undocumented: got %v, want %v", undocumented, extra)
	}
}
