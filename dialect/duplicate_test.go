package dialect_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tokend/tokend/dialect/ocm"
	"github.com/tokend/tokend/dialect/simplejwt"
	"github.com/tokend/tokend/dialect/taiki"
	"github.com/tokend/tokend/grant"
)

// One reading of each request: a body that names a key twice, at any
// depth, is refused at every endpoint that reads a body, each in its own
// error format, even where either value alone would be accepted. (Atoti's
// endpoint is a GET and reads no body.)
func TestDuplicateKeysRefused(t *testing.T) {
	e := newEnv(t, grant.Limits{})
	sj := wantOK(t, e.sjObtain(aliceName, alicePassword, ""), "access", "refresh")
	sjRT := str(sj, "refresh")
	oc := wantOK(t, e.ocmLogin(aliceName, alicePassword, ""), "refreshToken")
	ocRT := str(oc, "refreshToken")
	client := basic(e.clientID, e.clientSecret)
	alice := basic(aliceName, alicePassword)
	creds := `"api_key":"` + e.clientID + `","api_secret":"` + e.clientSecret + `"`
	login := `"username":"` + aliceName + `","password":"` + alicePassword + `"`

	oauthDup := func(what string) string {
		return `{"error":"invalid_request","error_description":"` + what + ` given more than once"}` + "\n"
	}
	sjDup := func(path string) string { return `{"detail":"JSON parse error - duplicate key ` + path + `"}` }
	ocmDup := func(path string) string {
		return `{"type":"https://www.rfc-editor.org/rfc/rfc9110#section-15.5.1","title":"Illegal Argument","status":400,` +
			`"detail":"The request body names the key ` + path + ` more than once.","o:errorCode":"` + ocm.CodeDuplicateKey + `","o:errorPath":"` + path + `"}`
	}
	const taikiMalformed = `{"error":"invalid_request","error_description":"No API key or API secret provided"}`

	cases := []struct {
		name, path, ctype, body, auth string
		status                        int
		want                          string
	}{
		// /oauth2/token, JSON: as a form parameter given twice (RFC 6749 §3.2).
		{"oauth token grant_type twice", "/oauth2/token", jsonType,
			`{"grant_type":"password","grant_type":"client_credentials"}`, client, 400, oauthDup("parameter grant_type")},
		{"oauth token escaped twin", "/oauth2/token", jsonType,
			`{"grant_type":"client_credentials","grant\u005ftype":"client_credentials"}`, client, 400, oauthDup("parameter grant_type")},
		{"oauth token null twin", "/oauth2/token", jsonType,
			`{"grant_type":"client_credentials","scope":null,"scope":"x"}`, client, 400, oauthDup("parameter scope")},
		{"oauth token nested", "/oauth2/token", jsonType,
			`{"grant_type":"client_credentials","x":{"a":"1","a":"2"}}`, client, 400, oauthDup("JSON key $.x.a")},
		{"oauth token in an array", "/oauth2/token", jsonType,
			`{"grant_type":"client_credentials","x":[1,{"b":{"a":1,"a":1}}]}`, client, 400, oauthDup("JSON key $.x[1].b.a")},
		{"oauth token form", "/oauth2/token", formType,
			"grant_type=client_credentials&grant_type=client_credentials", client, 400, oauthDup("parameter grant_type")},
		{"oauth revoke", "/oauth2/revoke", jsonType,
			`{"token":"x","token":"` + sjRT + `"}`, client, 400, oauthDup("parameter token")},
		{"oauth revoke nested", "/oauth2/revoke", jsonType,
			`{"token":"x","meta":{"k":"1","k":"1"}}`, client, 400, oauthDup("JSON key $.meta.k")},
		{"oauth introspect", "/oauth2/introspect", jsonType,
			`{"token":"x","token":"` + sjRT + `"}`, client, 400, oauthDup("parameter token")},
		{"oauth introspect nested", "/oauth2/introspect", jsonType,
			`{"token":"x","meta":{"k":"1","k":"1"}}`, client, 400, oauthDup("JSON key $.meta.k")},

		// simplejwt: Django REST framework's parse error.
		{"simplejwt obtain", simplejwt.PathObtain, jsonType,
			`{"username":"nobody",` + login + `}`, "", 400, sjDup("$.username")},
		{"simplejwt obtain nested", simplejwt.PathObtain, jsonType,
			`{` + login + `,"extra":{"k":1,"k":2}}`, "", 400, sjDup("$.extra.k")},
		{"simplejwt obtain odd key", simplejwt.PathObtain, jsonType,
			`{` + login + `,"a b":1,"a b":1}`, "", 400, sjDup("$['a b']")},
		{"simplejwt obtain form", simplejwt.PathObtain, formType,
			"username=nobody&" + url.Values{"username": {aliceName}, "password": {alicePassword}}.Encode(), "", 400,
			`{"detail":"Form parse error - duplicate parameter username"}`},
		{"simplejwt refresh", simplejwt.PathRefresh, jsonType,
			`{"refresh":"x","refresh":"` + sjRT + `"}`, "", 400, sjDup("$.refresh")},
		{"simplejwt refresh nested", simplejwt.PathRefresh, jsonType,
			`{"refresh":"` + sjRT + `","access":{"a":1,"a":1}}`, "", 400, sjDup("$.access.a")},
		{"simplejwt verify", simplejwt.PathVerify, jsonType,
			`{"token":"x","token":"` + sjRT + `"}`, "", 400, sjDup("$.token")},
		{"simplejwt verify nested", simplejwt.PathVerify, jsonType,
			`{"token":"` + sjRT + `","x":[[{"a":1,"a":1}]]}`, "", 400, sjDup("$.x[0][0].a")},
		{"simplejwt blacklist", simplejwt.PathBlacklist, jsonType,
			`{"refresh":"x","refresh":"` + sjRT + `"}`, "", 400, sjDup("$.refresh")},
		{"simplejwt blacklist nested", simplejwt.PathBlacklist, jsonType,
			`{"refresh":"` + sjRT + `","x":{"y":{"a":1,"a":1}}}`, "", 400, sjDup("$.x.y.a")},

		// ocm: an ExceptionDetail that points at the second key.
		{"ocm refresh", ocm.Path, jsonType,
			`{"refreshToken":"bogus","refreshToken":"` + ocRT + `"}`, "", 400, ocmDup("$.refreshToken")},
		{"ocm login nested", ocm.Path, jsonType,
			`{"x":[{"a":1,"a":2}]}`, alice, 400, ocmDup("$.x[0].a")},

		// taiki: malformed JSON gets the missing-key answer (spec).
		{"taiki", taiki.Path, jsonType,
			`{"api_key":"wrong",` + creds + `}`, "", 400, taikiMalformed},
		{"taiki nested", taiki.Path, jsonType,
			`{` + creds + `,"meta":{"a":1,"a":2}}`, "", 400, taikiMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.send("POST", c.path, c.ctype, c.body, c.auth, "")
			if r.Status != c.status || string(r.Body) != c.want {
				t.Fatalf("%d %s\nwant %d %s", r.Status, r.Body, c.status, c.want)
			}
			if ct := r.Header.Get("Content-Type"); ct != jsonType {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}

	// Nothing was done on the strength of any of them: the tokens named in
	// the refused bodies are live still.
	wantOK(t, e.sjRefresh(sjRT, ""), "access")
	wantOK(t, e.ocmRefresh(ocRT, "", ""), "accessToken")

	// Each body once more without its twin is accepted: only the
	// duplicate was at fault.
	for _, ok := range []struct{ path, ctype, body, auth string }{
		{"/oauth2/token", jsonType, `{"grant_type":"client_credentials","scope":null}`, client},
		{simplejwt.PathObtain, jsonType, `{` + login + `,"extra":{"k":1,"l":2}}`, ""},
		{simplejwt.PathObtain, formType, url.Values{"username": {aliceName}, "password": {alicePassword}}.Encode(), ""},
		{taiki.Path, jsonType, `{` + creds + `,"meta":{"a":1,"b":2}}`, ""},
	} {
		if r := e.send("POST", ok.path, ok.ctype, ok.body, ok.auth, ""); r.Status != 200 {
			t.Errorf("%s %s: %d %s", ok.path, strings.Split(ok.body, ",")[0], r.Status, r.Body)
		}
	}
}
