package ocm_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/ocm"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/tokendtest"
)

const (
	path          = "/system/api/v1/security/token"
	jsonType      = "application/json"
	alicePassword = "correct horse battery staple"
	bobPassword   = "pw-of-bob"
	day           = 24 * time.Hour
)

// env is a running tokend with the ocm dialect, users alice and bob, and a
// confidential client (the resource server that introspects and revokes).
type env struct {
	*tokendtest.Env
	t *testing.T

	aliceID, bobID         string
	clientID, clientSecret string
}

func newEnv(t *testing.T, params *secret.Params) *env {
	t.Helper()
	te := tokendtest.New(t, tokendtest.Options{
		// Keys stay published as long as the longest OCM token lives.
		Config: func(c *grant.Config) { c.MaxTokenTTL = 30 * day },
		Params: params,
		Routes: func(e *tokendtest.Env) []httpapi.Routes {
			return []httpapi.Routes{ocm.New(e.Engine, ocm.DefaultConfig)}
		},
	})
	e := &env{Env: te, t: t}
	e.aliceID = e.AddUser("alice", alicePassword, "ROLE_USER")
	e.bobID = e.AddUser("bob", bobPassword)
	e.clientID, e.clientSecret = e.AddClient(false, "", nil, tokend.GrantClientCredentials)
	return e
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// post sends a POST to the endpoint; header is name, value pairs.
func (e *env) post(p, contentType, body string, header ...string) tokendtest.Response {
	e.t.Helper()
	return e.Do("POST", p, contentType, body, header...)
}

// login gets alice's tokens with Basic and no body, and checks the answer.
func (e *env) login() (access, refresh string) {
	e.t.Helper()
	r := e.post(path, "", "", "Authorization", basic("alice", alicePassword))
	got := wantAuthToken(e.t, r)
	return got.AccessToken, got.RefreshToken
}

// refresh trades rt in, with header pairs (for Authorization).
func (e *env) refresh(rt string, header ...string) tokendtest.Response {
	e.t.Helper()
	return e.post(path, jsonType, `{"refreshToken": `+quote(rt)+`}`, header...)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// form posts a form to a standard endpoint as the confidential client.
func (e *env) form(p string, kv ...string) tokendtest.Response {
	e.t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return e.post(p, "application/x-www-form-urlencoded", v.Encode(), "Authorization", basic(e.clientID, e.clientSecret))
}

func (e *env) introspect(tok string) map[string]any {
	e.t.Helper()
	r := e.form("/oauth2/introspect", "token", tok)
	if r.Status != 200 {
		e.t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	return r.JSON(e.t)
}

func (e *env) revoke(tok string) {
	e.t.Helper()
	if r := e.form("/oauth2/revoke", "token", tok); r.Status != 200 {
		e.t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
}

type authToken struct {
	AccessToken     string `json:"accessToken"`
	TokenType       string `json:"tokenType"`
	ExpiresInMillis int64  `json:"expiresInMillis"`
	RefreshToken    string `json:"refreshToken"`
}

// wantAuthToken checks a 200 AuthToken: exactly its four fields, a Bearer
// type, 14 days in milliseconds, JSON, not cacheable.
func wantAuthToken(t *testing.T, r tokendtest.Response) authToken {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d, want 200 (body %s)", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != jsonType {
		t.Fatalf("Content-Type %q", ct)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range r.JSON(t) {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{"accessToken", "expiresInMillis", "refreshToken", "tokenType"}; !slices.Equal(keys, want) {
		t.Fatalf("fields %v, want %v (body %s)", keys, want, r.Body)
	}
	var got authToken
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	if got.TokenType != "Bearer" || got.ExpiresInMillis != 1209600000 || got.AccessToken == "" || got.RefreshToken == "" {
		t.Fatalf("unexpected AuthToken %s", r.Body)
	}
	return got
}

// The details, as a person reads them.
const (
	detailMalformed       = `The request body must be a JSON object, such as {} or {"refreshToken": "..."}.`
	detailMediaType       = "The request body must be sent as application/json."
	detailRefreshType     = "refreshToken must be a non-empty string."
	detailRefreshInvalid  = "The refresh token is invalid, expired or revoked."
	detailCredsRequired   = "Authenticate with HTTP Basic as a user, or send a refreshToken."
	detailBadCredentials  = "The username or password is incorrect."
	detailClientApp       = "This end point can not be used to get token for client applications."
	detailSubjectMismatch = "The refresh token belongs to another user than the authenticated one."
	detailMethod          = "Use POST on this endpoint."
	detailTooLarge        = "The request body is larger than 64 KiB."
	detailInternal        = "The request could not be completed because of an internal error."
	detailUnavailable     = "The service is busy or temporarily unavailable. Retry later."
)

// exceptionDetail returns the whole ExceptionDetail body expected for
// status, written out as the wire shows it.
func exceptionDetail(status int, code, detail, errorPath string) string {
	types := map[int]string{
		400: `"type": "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.1", "title": "Illegal Argument"`,
		401: `"type": "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.2", "title": "Unauthorized"`,
		403: `"type": "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.4", "title": "Forbidden"`,
		405: `"type": "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.6", "title": "Method Not Allowed"`,
		413: `"type": "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.14", "title": "Payload Too Large"`,
		500: `"type": "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.1", "title": "Internal Server Error"`,
		503: `"type": "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.4", "title": "Service Unavailable"`,
	}
	s := fmt.Sprintf(`{%s, "status": %d, "detail": %s, "o:errorCode": %q`, types[status], status, quote(detail), code)
	if errorPath != "" {
		s += fmt.Sprintf(`, "o:errorPath": %q`, errorPath)
	}
	return s + "}"
}

// wantProblem checks an error answer: status, Content-Type, the whole
// ExceptionDetail body, the headers its status calls for, and no token.
func wantProblem(t *testing.T, r tokendtest.Response, status int, code, detail, errorPath string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (body %s)", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != jsonType {
		t.Fatalf("Content-Type %q", ct)
	}
	var got, want any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("body is not JSON: %q", r.Body)
	}
	wantBody := exceptionDetail(status, code, detail, errorPath)
	if err := json.Unmarshal([]byte(wantBody), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body\n %s\nwant\n %s", r.Body, wantBody)
	}
	wantHeader := func(name, value string) {
		t.Helper()
		if got := r.Header.Get(name); got != value {
			t.Fatalf("%s %q, want %q", name, got, value)
		}
	}
	switch status {
	case 401:
		wantHeader("WWW-Authenticate", `Basic realm="ocm"`)
	case 405:
		wantHeader("Allow", "POST")
	case 503:
		wantHeader("Retry-After", "1")
	default:
		wantHeader("WWW-Authenticate", "")
	}
	if b := string(r.Body); strings.Contains(b, "eyJ") || strings.Contains(b, "rt1_") {
		t.Fatalf("error body carries a token: %s", b)
	}
}
