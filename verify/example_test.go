package verify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
	"github.com/tokend/tokend/verify"
)

// A service verifies tokend's access tokens with a Verifier and its
// middleware; a token revoked at tokend is refused within about a second.
func Example() {
	issuer := startTokend() // a real tokend; yours runs on its own
	defer issuer.stop()
	ctx := context.Background()

	v, err := verify.New(ctx, issuer.url, verify.Options{
		Audience:   issuer.url, // tokend's default audience is its issuer URL
		Algorithms: []string{"ES256"},
		// The service's own client at tokend, to follow the revocation feed.
		ClientID: issuer.serviceID, ClientSecret: issuer.serviceSecret,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	mux := http.NewServeMux()
	readOrders := verify.Middleware(v, verify.MiddlewareOptions{Scopes: []string{"orders:read"}})
	mux.Handle("GET /orders", readOrders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := verify.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "orders, for a token with scope %q", claims.Scope)
	})))
	api := httptest.NewServer(mux)
	defer api.Close()

	token := issuer.token("orders:read")
	fmt.Println(call(api.URL+"/orders", token))

	issuer.revoke(token)
	for !strings.HasPrefix(call(api.URL+"/orders", token), "401") {
		time.Sleep(10 * time.Millisecond) // the feed brings the revocation
	}
	fmt.Println(call(api.URL+"/orders", token))
	// Output:
	// 200 orders, for a token with scope "orders:read"
	// 401 Bearer realm="api", error="invalid_token", error_description="token revoked"
}

// call sends GET url with the token and sums up the answer.
func call(u, token string) string {
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, body)
}

// exampleTokend is a tokend run in process: the engine on a SQLite file
// and its HTTP API, served at its own issuer URL; with a client for the
// service (to follow the feed) and one for an app that calls it.
type exampleTokend struct {
	url                      string
	serviceID, serviceSecret string
	appID, appSecret         string
	stop                     func()
}

func startTokend() *exampleTokend {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tokend-example")
	if err != nil {
		log.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "tokend.db"))
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	t := &exampleTokend{url: "http://" + ln.Addr().String()}
	hasher, _ := secret.NewHasher(secret.Params{MemoryKiB: 1024, Time: 1, Threads: 1}, 0, 8)
	engine, err := grant.New(grant.Config{Issuer: t.url, Alg: "ES256", AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour},
		grant.Deps{Store: store, Hasher: hasher})
	if err != nil {
		log.Fatal(err)
	}
	if err := engine.Start(ctx); err != nil {
		log.Fatal(err)
	}
	watch, stopWatch := context.WithCancel(ctx)
	go engine.Watch(watch, 100*time.Millisecond, nil)
	api := &httpapi.Server{Engine: engine, Store: store, Metrics: metrics.New(), Log: slog.New(slog.DiscardHandler)}
	srv := &http.Server{Handler: api.Handler()}
	go srv.Serve(ln)
	t.serviceID, t.serviceSecret = addClient(store, nil)
	t.appID, t.appSecret = addClient(store, []string{"orders:read"})
	t.stop = func() {
		srv.Close()
		stopWatch()
		store.Close()
		os.RemoveAll(dir)
	}
	return t
}

func addClient(store tokend.Store, scopes []string) (id, sec string) {
	ctx := context.Background()
	c := &tokend.ClientApp{ID: uuid.NewString(), Name: "example", Grants: []string{tokend.GrantClientCredentials},
		Scopes: scopes, Mode: tokend.ModeProduction, CreatedAt: time.Now()}
	var err error
	if sec, c.SecretHash, err = grant.NewClientSecret(ctx, store); err != nil {
		log.Fatal(err)
	}
	if err := store.CreateClient(ctx, c); err != nil {
		log.Fatal(err)
	}
	return c.ID, sec
}

// token gets an access token for the app (client_credentials).
func (t *exampleTokend) token(scope string) string {
	var body struct {
		AccessToken string `json:"access_token"`
	}
	t.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, &body)
	return body.AccessToken
}

// revoke revokes a token of the app (RFC 7009).
func (t *exampleTokend) revoke(token string) {
	t.post("/oauth2/revoke", url.Values{"token": {token}}, nil)
}

// post sends a form as the app, and decodes the JSON answer into out.
func (t *exampleTokend) post(path string, form url.Values, out any) {
	req, _ := http.NewRequest("POST", t.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(t.appID, t.appSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		log.Fatalf("POST %s: %s", path, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			log.Fatal(err)
		}
	}
}
