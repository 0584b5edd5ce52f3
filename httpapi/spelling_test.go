package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// A refresh token has one spelling. Go's base64 decoders skip CR and LF
// and ignore the unused low bits of the last character, so without care a
// token with a newline appended or inserted, or with a different last
// character, would decode to the same session and counter: another string
// that is the same credential. Every such twin is refused at the token
// endpoint, is inactive at introspection, and revokes nothing.
func TestRefreshTokenHasOneSpelling(t *testing.T) {
	e := newEnv(t)
	// The confidential client logs in, so that it may introspect its own
	// refresh token.
	r := e.post("/oauth2/token", vals("grant_type", "password", "username", "alice", "password", alicePassword), e.basic())
	rt := r.Str(t, "refresh_token")
	refresh := func(tok string) response {
		return e.post("/oauth2/token", vals("grant_type", "refresh_token", "refresh_token", tok), e.basic())
	}
	if !strings.HasPrefix(rt, "rt1_") {
		t.Fatalf("refresh token %q", rt)
	}
	twins := []struct{ name, tok string }{
		{"newline appended", rt + "\n"},
		{"space appended", rt + " "},
		{"CRLF appended", rt + "\r\n"},
		{"newline inserted", rt[:30] + "\n" + rt[30:]},
		{"CR inserted", rt[:30] + "\r" + rt[30:]},
		{"non-canonical last character", nonCanonical(t, rt)},
		{"padded", rt + "="},
	}
	const refused = `{"error":"invalid_grant","error_description":"invalid refresh token"}` + "\n"
	for _, c := range twins {
		t.Run(c.name, func(t *testing.T) {
			r := refresh(c.tok)
			if r.Status != 400 || string(r.Body) != refused {
				t.Fatalf("refresh with the twin: %d %s", r.Status, r.Body)
			}
			if m := e.introspect(c.tok); len(m) != 1 || m["active"] != false {
				t.Fatalf("introspect the twin: %v", m)
			}
			if r := e.post("/oauth2/revoke", vals("token", c.tok), e.basic()); r.Status != 200 {
				t.Fatalf("revoke the twin: %d %s", r.Status, r.Body)
			}
			if m := e.introspect(rt); m["active"] != true {
				t.Fatalf("refreshing with or revoking the twin ended the token: %v", m)
			}
		})
	}
	// The one true spelling still works.
	if r := refresh(rt); r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
}

// nonCanonical returns rt with its last character changed in the bits that
// base64 ignores, checking that it decodes to the same bytes without
// Strict: a true twin.
func nonCanonical(t *testing.T, rt string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	body := rt[len("rt1_"):]
	if len(body)%4 == 0 || len(body)%4 == 1 {
		t.Fatalf("a body of %d characters has no unused bits", len(body))
	}
	last := strings.IndexByte(alphabet, body[len(body)-1])
	twin := rt[:len(rt)-1] + string(alphabet[last^1])
	a, err1 := base64.RawURLEncoding.DecodeString(body)
	b, err2 := base64.RawURLEncoding.DecodeString(twin[len("rt1_"):])
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) || twin == rt {
		t.Fatalf("%q is no twin of %q", twin, rt)
	}
	return twin
}
