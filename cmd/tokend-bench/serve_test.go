package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestCeilingChecksCredentials: the ceiling does what a bare server must
// at the least, as tokend does: it reads the form and refuses a request
// without the client's Basic credentials; and its tokens are compact JWSs
// that go-jose verifies with the algorithm they name.
func TestCeilingChecksCredentials(t *testing.T) {
	t.Parallel()
	es, _, _ := fakeKeys(t)
	f := &fakeTokend{es: es}
	sample, _ := json.Marshal(map[string]any{"access_token": f.sign(es, `,"client_id":"cid"`), "token_type": "Bearer", "expires_in": 900})
	c, err := startCeiling(ceilingSpec{Kind: ceilToken, Sample: sample, Auth: basic(fcID, fcSecret)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, tc := range []struct {
		name string
		auth string
		body string
		want int
	}{
		{"right credentials", basic(fcID, fcSecret), "grant_type=client_credentials", 200},
		{"wrong secret", basic(fcID, fcSecret+"x"), "grant_type=client_credentials", 401},
		{"another client", basic("other", fcSecret), "grant_type=client_credentials", 401},
		{"no credentials", "", "grant_type=client_credentials", 401},
		{"broken form", basic(fcID, fcSecret), "grant_type=%zz", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", c.url+"/oauth2/token", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want != 200 {
				return
			}
			var out struct {
				AccessToken string `json:"access_token"`
			}
			json.NewDecoder(resp.Body).Decode(&out)
			jws, err := jose.ParseSignedCompact(out.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatalf("the ceiling's token does not parse: %v", err)
			}
			m := c.minterFor(t, "access_token")
			if _, err := jws.Verify(m.public); err != nil {
				t.Fatalf("the ceiling's token does not verify: %v", err)
			}
		})
	}
}

// minterFor returns the minter of a token ceiling's field (in-process
// ceilings only).
func (c *ceiling) minterFor(t *testing.T, field string) *minter {
	t.Helper()
	tt, ok := c.srv.Handler.(*tokenTemplate)
	if !ok || tt.jwts[field] == nil {
		t.Fatalf("no minter for %s", field)
	}
	return tt.jwts[field]
}

// TestServeCeiling runs the tool as bench/run.sh does for wrk: it serves
// the ceiling of one scenario on its own, prints where, and stops when
// interrupted.
func TestServeCeiling(t *testing.T) {
	t.Parallel()
	_, srv := newFakeTokend(t)
	for _, sc := range []string{"client_credentials", "introspect", "jwks"} {
		t.Run(sc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, append(credArgs(srv.URL), "-scenario", sc, "-serve-ceiling", "127.0.0.1:0"), pw, io.Discard)
				pw.Close()
			}()
			line, err := bufio.NewReader(pr).ReadBytes('\n')
			if err != nil {
				t.Fatalf("no line from -serve-ceiling: %v (%v)", err, <-done)
			}
			go io.Copy(io.Discard, pr)
			var info ceilingInfo
			if err := json.Unmarshal(line, &info); err != nil || info.URL == "" {
				t.Fatalf("line %s: %v", line, err)
			}
			var resp *http.Response
			switch sc {
			case "client_credentials":
				req, _ := http.NewRequest("POST", info.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", basic(fcID, fcSecret))
				resp, err = http.DefaultClient.Do(req)
			case "introspect":
				if info.Token == "" {
					t.Fatal("no token to introspect")
				}
				req, _ := http.NewRequest("POST", info.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {info.Token}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", basic(fcID, fcSecret))
				resp, err = http.DefaultClient.Do(req)
			case "jwks":
				resp, err = http.Get(info.URL + "/.well-known/jwks.json")
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || (sc == "introspect" && !strings.Contains(string(body), `"active":true`)) {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("-serve-ceiling did not stop when interrupted")
			}
		})
	}
	t.Run("needs one scenario with a ceiling server", func(t *testing.T) {
		for _, sc := range []string{"all", "password", "client_credentials,jwks"} {
			err := run(context.Background(), append(credArgs(srv.URL), "-scenario", sc, "-serve-ceiling", "127.0.0.1:0"), io.Discard, io.Discard)
			if _, ok := err.(usageError); !ok {
				t.Errorf("-scenario %s: %v, want a usage error", sc, err)
			}
		}
	})
}
