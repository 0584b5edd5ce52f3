package verify_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/tokendtest"
	"github.com/tokend/tokend/verify"
)

// audience is the audience of the test issuer's access tokens.
const audience = "https://api.test"

// issuer is a real tokend (tokendtest's engine on a SQLite file) served at
// its own issuer URL, so that a Verifier finds its metadata, keys and feed
// there. It counts the requests for the key set, and can be stopped and
// started again on the same address (an outage). Env.Srv, tokendtest's
// own server, stays up throughout: it stands for another node.
type issuer struct {
	*tokendtest.Env
	t   testing.TB
	url string

	jwksFetches atomic.Int64
	mu          sync.Mutex
	srv         *httptest.Server
	addr        string

	// rsID/rsSecret: the resource server's client (follows the feed);
	// appID/appSecret: a client_credentials client; publicID: a public
	// client for alice's logins.
	rsID, rsSecret   string
	appID, appSecret string
	publicID         string
	aliceID          string
}

const alicePassword = "alice's long password"

func newIssuer(t testing.TB, config ...func(*grant.Config)) *issuer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{t: t, url: "http://" + ln.Addr().String(), addr: ln.Addr().String()}
	is.Env = tokendtest.New(t, tokendtest.Options{Config: func(c *grant.Config) {
		c.Issuer, c.Audience = is.url, audience
		for _, f := range config {
			f(c)
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { is.Engine.Watch(ctx, 20*time.Millisecond, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	is.serve(ln)
	t.Cleanup(is.stop)

	is.rsID, is.rsSecret = is.AddClient(false, "", nil, tokend.GrantClientCredentials)
	is.appID, is.appSecret = is.AddClient(false, "", []string{"orders:read", "orders:write"}, tokend.GrantClientCredentials)
	is.publicID, _ = is.AddClient(true, "", nil, tokend.GrantPassword, tokend.GrantRefreshToken)
	is.aliceID = is.AddUser("alice", alicePassword)
	return is
}

func (is *issuer) serve(ln net.Listener) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/jwks.json" {
			is.jwksFetches.Add(1)
		}
		is.Handler.ServeHTTP(w, r)
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	is.mu.Lock()
	is.srv = srv
	is.mu.Unlock()
}

// stop takes the issuer URL down: connections refused, open ones cut.
func (is *issuer) stop() {
	is.mu.Lock()
	srv := is.srv
	is.srv = nil
	is.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// start serves the issuer URL again, on the same address.
func (is *issuer) start() {
	is.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may take a moment to be free again
		if ln, err = net.Listen("tcp", is.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		is.t.Fatal(err)
	}
	is.serve(ln)
}

// options are a verifier's options for this issuer; opts adjust them.
func (is *issuer) options(opts ...func(*verify.Options)) verify.Options {
	o := verify.Options{
		Audience: audience, Algorithms: []string{"ES256"},
		ClientID: is.rsID, ClientSecret: is.rsSecret,
		Now: is.Clock.Now, FeedWait: 5 * time.Second,
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func (is *issuer) verifier(t testing.TB, opts ...func(*verify.Options)) *verify.Verifier {
	t.Helper()
	v, err := verify.New(t.Context(), is.url, is.options(opts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// appToken gets a client_credentials token through the other node.
func (is *issuer) appToken(scope string) string {
	is.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	r := is.Do("POST", "/oauth2/token", "application/x-www-form-urlencoded", form.Encode(),
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(is.appID+":"+is.appSecret)))
	if r.Status != 200 {
		is.t.Fatalf("client_credentials: %d %s", r.Status, r.Body)
	}
	return r.Str(is.t, "access_token")
}

// login gets alice's access and refresh tokens.
func (is *issuer) login() (access, refresh string) {
	is.t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}, "client_id": {is.publicID}}
	r := is.Do("POST", "/oauth2/token", "application/x-www-form-urlencoded", form.Encode())
	if r.Status != 200 {
		is.t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	return r.Str(is.t, "access_token"), r.Str(is.t, "refresh_token")
}

// revoke revokes a token at /oauth2/revoke, as client id:secret.
func (is *issuer) revoke(tok, id, secret string) {
	is.t.Helper()
	form := url.Values{"token": {tok}}
	var hdr []string
	if secret == "" {
		form.Set("client_id", id)
	} else {
		hdr = []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))}
	}
	if r := is.Do("POST", "/oauth2/revoke", "application/x-www-form-urlencoded", form.Encode(), hdr...); r.Status != 200 {
		is.t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
}

// mustVerify verifies tok, failing the test if it is refused.
func mustVerify(t testing.TB, v *verify.Verifier, tok string) *verify.Claims {
	t.Helper()
	c, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return c
}

// eventually waits, at most deadline, until v refuses tok with want, and
// returns how long that took.
func eventually(t *testing.T, v *verify.Verifier, tok string, want error, deadline time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < deadline {
		if _, err = v.Verify(t.Context(), tok); errors.Is(err, want) {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("not refused with %v within %v (last: %v)", want, deadline, err)
	return 0
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	h, _ := tokendtest.Decode(tok)
	kid, _ := h["kid"].(string)
	if kid == "" || strings.Contains(kid, " ") {
		t.Fatalf("token header %v has no kid", h)
	}
	return kid
}
