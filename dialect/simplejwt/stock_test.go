package simplejwt_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/simplejwt"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/tokendtest"
)

// The tests in this file and in differential_test.go run a real, stock
// django-rest-framework-simplejwt server (Debian's packages, 5.2.2 in
// bookworm) from testdata/stockserver: the same requests go to it and to
// tokend, and tokend's tokens go to a Django view protected by simplejwt's
// own JWTAuthentication.

// python is Debian's interpreter, which has Debian's Django packages (not
// whatever python is first on PATH).
const python = "/usr/bin/python3"

// stockUserID is the primary key of the user both servers know: Django's
// integer ids, and tokend's user created with the same id (as an import
// keeps ids).
const stockUserID = "42"

// stockOptions are the SIMPLE_JWT settings the stock server runs with.
type stockOptions struct {
	signingKey                  string
	userIDClaim, tokenTypeClaim string
}

// startStock runs the stock server and returns its base URL; it stops when
// the test ends. It skips the test when Debian's Django packages are not
// installed (.ci/run installs them, so CI always runs it).
func startStock(t *testing.T, o stockOptions) string {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import django, rest_framework, rest_framework_simplejwt").CombinedOutput(); err != nil {
		t.Skipf("no stock simplejwt to compare with (%v: %s); install it with: apt-get install -y python3-django python3-djangorestframework python3-djangorestframework-simplejwt", err, bytes.TrimSpace(out))
	}
	dir, err := filepath.Abs("testdata/stockserver")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join(dir, "server.py"))
	cmd.Dir = t.TempDir()
	cmd.Env = []string{
		"PATH=/usr/bin:/bin", "HOME=" + cmd.Dir, "PYTHONDONTWRITEBYTECODE=1",
		"STOCK_DB=" + filepath.Join(cmd.Dir, "stock.sqlite3"),
		"STOCK_SECRET_KEY=" + randomText(t),
		"STOCK_SIGNING_KEY=" + o.signingKey,
		"STOCK_USER_ID=" + stockUserID, "STOCK_USERNAME=" + aliceName, "STOCK_PASSWORD=" + alicePassword,
	}
	if o.userIDClaim != "" {
		cmd.Env = append(cmd.Env, "STOCK_USER_ID_CLAIM="+o.userIDClaim)
	}
	if o.tokenTypeClaim != "" {
		cmd.Env = append(cmd.Env, "STOCK_TOKEN_TYPE_CLAIM="+o.tokenTypeClaim)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
		io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		if a == "" {
			cmd.Wait()
			t.Fatalf("stock server did not start:\n%s", stderr.String())
		}
		return "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("stock server did not start within a minute:\n%s", stderr.String())
	}
	return ""
}

// randomText is 33 random bytes in base64: a key of 44 characters.
func randomText(t *testing.T) string {
	t.Helper()
	b := make([]byte, 33)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// newHSEnv is a tokend whose simplejwt dialect signs with HS256 and
// signingKey (the Django services' SIGNING_KEY), with the user alice of
// id 42, created through the store as an import would.
func newHSEnv(t *testing.T, signingKey string, cfg simplejwt.Config) *tokendtest.Env {
	t.Helper()
	k, err := keys.NewSymmetric("simplejwt", "HS256", []byte(signingKey))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Alg = "HS256"
	e := tokendtest.New(t, tokendtest.Options{
		Config: func(c *grant.Config) { c.SymmetricKeys = []*keys.Symmetric{k} },
		Routes: func(e *tokendtest.Env) []httpapi.Routes { return []httpapi.Routes{simplejwt.New(e.Engine, cfg)} },
	})
	hash, err := secret.HashPassword(alicePassword, tokendtest.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	u := &tokend.User{ID: stockUserID, Username: aliceName, PasswordHash: hash, CreatedAt: time.Now()}
	if err := e.Store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return e
}

// get sends a GET with a bearer token to a URL.
func get(t *testing.T, url, bearer string) response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// TestStockResourceServer checks that a stock Django service, with
// simplejwt's JWTAuthentication and SIGNING_KEY set to tokend's HS256 key,
// accepts tokend's simplejwt access tokens and resolves request.user to
// the user of the token's user_id (42, a number, as Django writes it);
// and that with USER_ID_CLAIM and TOKEN_TYPE_CLAIM renamed on both sides,
// it still does, and tokend still finds the user in its own tokens.
func TestStockResourceServer(t *testing.T) {
	for _, c := range []struct {
		name              string
		userID, tokenType string
	}{
		{"default claim names", "", ""},
		{"renamed claims", "uid", "kind"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := randomText(t)
			stock := startStock(t, stockOptions{signingKey: key, userIDClaim: c.userID, tokenTypeClaim: c.tokenType})
			cfg := simplejwt.DefaultConfig
			cfg.UserIDClaim, cfg.TokenTypeClaim = c.userID, c.tokenType
			e := newHSEnv(t, key, cfg)

			r := e.Do("POST", simplejwt.PathObtain, jsonType, js(map[string]string{"username": aliceName, "password": alicePassword}))
			if r.Status != 200 {
				t.Fatalf("obtain: %d %s", r.Status, r.Body)
			}
			rt, at := r.Str(t, "refresh"), r.Str(t, "access")
			_, claims := tokendtest.Decode(at)
			uidName, typeName := cmp.Or(c.userID, "user_id"), cmp.Or(c.tokenType, "token_type")
			if claims[uidName] != float64(42) || claims[typeName] != "access" {
				t.Fatalf("access token claims %v: want %s 42 (a number) and %s access", claims, uidName, typeName)
			}
			if _, ok := claims["user_id"]; ok && c.userID != "" {
				t.Fatalf("renamed user_id claim is still there: %v", claims)
			}

			// Django resolves request.user from tokend's access token.
			w := get(t, stock+"/whoami/", at)
			if w.Status != 200 || string(w.Body) != `{"id":42,"username":"alice.williams"}` {
				t.Fatalf("Django view with tokend's access token: %d %s", w.Status, w.Body)
			}
			// A refresh token is no access token to Django either.
			if w := get(t, stock+"/whoami/", rt); w.Status != 401 || !strings.Contains(string(w.Body), "Token has wrong type") {
				t.Fatalf("Django view with tokend's refresh token: %d %s", w.Status, w.Body)
			}

			// tokend reads its renamed claims back: verify, refresh and
			// introspection find the token's user.
			if r := e.Do("POST", simplejwt.PathVerify, jsonType, js(map[string]string{"token": at})); r.Status != 200 {
				t.Fatalf("verify: %d %s", r.Status, r.Body)
			}
			r = e.Do("POST", simplejwt.PathRefresh, jsonType, js(map[string]string{"refresh": rt}))
			if r.Status != 200 {
				t.Fatalf("refresh: %d %s", r.Status, r.Body)
			}
			at2 := r.Str(t, "access")
			if w := get(t, stock+"/whoami/", at2); w.Status != 200 || !strings.Contains(string(w.Body), `"id":42`) {
				t.Fatalf("Django view with the refreshed access token: %d %s", w.Status, w.Body)
			}
			tc, _, err := e.Engine.CheckTokenFor(t.Context(), simplejwt.Profile(cfg), at2)
			if err != nil {
				t.Fatal(err)
			}
			if u, err := e.Engine.TokenUser(t.Context(), tc); err != nil || u == nil || u.ID != stockUserID {
				t.Fatalf("the engine's user of the token: %v %v", u, err)
			}
			wantToken(t, e.Do("POST", simplejwt.PathRefresh, jsonType, js(map[string]string{"refresh": at})), wrongType)

			// A token Django minted with the shared key is not tokend's:
			// it names no issuer and no kid.
			s := httpPost(t, stock+simplejwt.PathObtain, jsonType, js(map[string]string{"username": aliceName, "password": alicePassword}))
			var pair map[string]string
			if err := json.Unmarshal(s.Body, &pair); err != nil || pair["access"] == "" {
				t.Fatalf("stock obtain: %d %s", s.Status, s.Body)
			}
			wantToken(t, e.Do("POST", simplejwt.PathVerify, jsonType, js(map[string]string{"token": pair["access"]})), tokenNotValid)
		})
	}
}
