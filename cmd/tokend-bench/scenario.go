package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// ceilingKind says what the ceiling server does for a scenario.
type ceilingKind int

const (
	ceilToken      ceilingKind = iota // sign fresh JWTs shaped like tokend's answer
	ceilIntrospect                    // verify a JWT, answer {"active":true,...}
	ceilJWKS                          // serve the same bytes
	ceilArgon2                        // no server: the argon2id hash rate
)

// scenario is one kind of request, sent over and over.
type scenario struct {
	name, method, path string
	needs              []string // credential flags it cannot do without
	// userPassword: every request checks a user's password, so one argon2id
	// hash bounds it whatever else the ceiling measures.
	userPassword bool
	ceiling      ceilingKind
	// expect is a JSON key that every usable 2xx answer carries.
	expect string
}

const (
	pathToken      = "/oauth2/token"
	pathIntrospect = "/oauth2/introspect"
)

// scenarios are every scenario, in the order -scenario all runs them.
var scenarios = []*scenario{
	{name: "client_credentials", method: "POST", path: pathToken, needs: []string{"-client-id", "-client-secret"}, expect: "access_token"},
	{name: "password", method: "POST", path: pathToken, needs: []string{"-public-client-id", "-username", "-password"}, userPassword: true, ceiling: ceilArgon2, expect: "access_token"},
	{name: "refresh_token", method: "POST", path: pathToken, needs: []string{"-public-client-id", "-username", "-password"}, expect: "refresh_token"},
	{name: "introspect", method: "POST", path: pathIntrospect, needs: []string{"-client-id", "-client-secret"}, ceiling: ceilIntrospect, expect: "active"},
	{name: "jwks", method: "GET", path: "/.well-known/jwks.json", ceiling: ceilJWKS, expect: "keys"},
	{name: "atoti", method: "GET", path: "/activeviam/jwt/rest/v3/token", needs: []string{"-username", "-password"}, userPassword: true, expect: "token"},
	{name: "simplejwt", method: "POST", path: "/api/v1/token/", needs: []string{"-username", "-password"}, userPassword: true, expect: "access"},
	{name: "ocm", method: "POST", path: "/system/api/v1/security/token", needs: []string{"-username", "-password"}, userPassword: true, expect: "accessToken"},
	{name: "taiki", method: "POST", path: "/api/token", needs: []string{"-client-id", "-client-secret"}, expect: "access_token"},
}

// missing lists the credential flags s needs that are empty.
func (s *scenario) missing(c creds) []string {
	have := map[string]string{
		"-client-id": c.clientID, "-client-secret": c.clientSecret, "-public-client-id": c.publicClientID,
		"-username": c.username, "-password": c.password,
	}
	var out []string
	for _, n := range s.needs {
		if have[n] == "" {
			out = append(out, n)
		}
	}
	return out
}

// plan is a scenario set up against tokend: the request to repeat, and
// tokend's own answer to it, which the ceiling copies.
type plan struct {
	req          request
	sample       []byte
	sampleHeader http.Header
	// refresh holds each worker's session (refresh_token): its first
	// refresh token, from its own login.
	refresh []string
	creds   creds
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func formRequest(path, auth string, kv ...string) request {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return request{method: "POST", path: path, body: []byte(v.Encode()), contentType: "application/x-www-form-urlencoded", auth: auth}
}

func jsonRequest(path, auth string, v any) request {
	b, _ := json.Marshal(v)
	return request{method: "POST", path: path, body: b, contentType: "application/json", auth: auth}
}

func passwordRequest(c creds) request {
	return formRequest(pathToken, "", "grant_type", "password", "username", c.username, "password", c.password, "client_id", c.publicClientID)
}

func refreshRequest(c creds, rt string) request {
	return formRequest(pathToken, "", "grant_type", "refresh_token", "refresh_token", rt, "client_id", c.publicClientID)
}

func introspectRequest(c creds, tok string) request {
	return formRequest(pathIntrospect, basic(c.clientID, c.clientSecret), "token", tok)
}

// prepare checks that s works against t with these credentials and gets
// what its workers need.
func (s *scenario) prepare(ctx context.Context, t *target, c creds, concurrency int) (*plan, error) {
	p := &plan{creds: c}
	switch s.name {
	case "client_credentials":
		p.req = formRequest(pathToken, basic(c.clientID, c.clientSecret), "grant_type", "client_credentials")
	case "password":
		p.req = passwordRequest(c)
	case "refresh_token":
		var err error
		if p.refresh, err = logins(ctx, t, c, concurrency); err != nil {
			return nil, err
		}
		// The sample is a refresh, which rotates worker 0's session.
		a, err := setupSend(ctx, t, refreshRequest(c, p.refresh[0]), s.expect)
		if err != nil {
			return nil, err
		}
		if p.refresh[0], err = field(a.body, "refresh_token"); err != nil {
			return nil, err
		}
		p.sample, p.sampleHeader = a.body, a.header
		return p, nil
	case "introspect":
		cc := formRequest(pathToken, basic(c.clientID, c.clientSecret), "grant_type", "client_credentials")
		a, err := setupSend(ctx, t, cc, "access_token")
		if err != nil {
			return nil, fmt.Errorf("get a token to introspect: %w", err)
		}
		tok, err := field(a.body, "access_token")
		if err != nil {
			return nil, err
		}
		p.req = introspectRequest(c, tok)
		// The ceiling mimics the token looked at, not the answer.
		p.sample = a.body
		if a, err = setupSend(ctx, t, p.req, s.expect); err != nil {
			return nil, err
		}
		var in struct{ Active bool }
		if json.Unmarshal(a.body, &in) != nil || !in.Active {
			return nil, errors.New("introspection of a fresh token did not say active")
		}
		return p, nil
	case "jwks":
		p.req = request{method: "GET", path: s.path}
	case "atoti":
		p.req = request{method: "GET", path: s.path, auth: basic(c.username, c.password)}
	case "simplejwt":
		p.req = jsonRequest(s.path, "", map[string]string{"username": c.username, "password": c.password})
	case "ocm":
		p.req = request{method: "POST", path: s.path, body: []byte("{}"), contentType: "application/json", auth: basic(c.username, c.password)}
	case "taiki":
		// The first call creates the end user; every later one names it.
		first := jsonRequest(s.path, "", map[string]string{"api_key": c.clientID, "api_secret": c.clientSecret})
		a, err := setupSend(ctx, t, first, s.expect)
		if err != nil {
			return nil, err
		}
		uid, err := field(a.body, "taiki_user_id")
		if err != nil {
			return nil, err
		}
		p.req = jsonRequest(s.path, "", map[string]string{"api_key": c.clientID, "api_secret": c.clientSecret, "taiki_user_id": uid})
	default:
		return nil, fmt.Errorf("unknown scenario %q", s.name)
	}
	a, err := setupSend(ctx, t, p.req, s.expect)
	if err != nil {
		return nil, err
	}
	p.sample, p.sampleHeader = a.body, a.header
	return p, nil
}

// setupSend sends one setup request, waiting out 429 and 503 (tokend's
// answers when password hashing is saturated) a few times.
func setupSend(ctx context.Context, t *target, r request, expect string) (answer, error) {
	var buf bytes.Buffer
	for attempt := 0; ; attempt++ {
		a, err := t.send(ctx, &r, &buf)
		if err != nil {
			return answer{}, fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
		if (a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable) && attempt < 20 {
			wait := 100 * time.Millisecond << min(attempt, 4)
			if s, err := strconv.Atoi(a.header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(min(s, 5)) * time.Second
			}
			select {
			case <-ctx.Done():
				return answer{}, ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		if a.status < 200 || a.status > 299 {
			return answer{}, fmt.Errorf("%s %s: status %d: %s", r.method, r.path, a.status, snippet(a.body))
		}
		if err := hasKey(a.body, expect); err != nil {
			return answer{}, fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
		a.body = bytes.Clone(a.body)
		return a, nil
	}
}

// logins logs the user in once per worker, a few at a time (each login is
// an argon2id hash, and tokend sheds a burst of them), and returns each
// session's refresh token.
func logins(ctx context.Context, t *target, c creds, n int) ([]string, error) {
	out := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			a, err := setupSend(ctx, t, passwordRequest(c), "refresh_token")
			if err == nil {
				out[i], err = field(a.body, "refresh_token")
			}
			if err != nil {
				errs[i] = fmt.Errorf("log in session %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// field reads a string field of a JSON object answer.
func field(body []byte, name string) (string, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return "", fmt.Errorf("answer is not a JSON object: %s", snippet(body))
	}
	s, ok := m[name].(string)
	if !ok || s == "" {
		return "", fmt.Errorf("answer has no %q string", name)
	}
	return s, nil
}

// hasKey checks cheaply that body looks like a JSON object with key.
func hasKey(body []byte, key string) error {
	if key == "" || bytes.Contains(body, []byte(`"`+key+`"`)) {
		return nil
	}
	return fmt.Errorf("answer has no %q: %s", key, snippet(body))
}

// snippet is the start of a body, for an error message.
func snippet(b []byte) string {
	const n = 200
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// calls builds one call per worker. Each worker of refresh_token keeps its
// own session and always presents the newest refresh token it was given.
func (s *scenario) calls(p *plan, t *target, n int) []call {
	out := make([]call, n)
	for i := range out {
		var buf bytes.Buffer
		if s.name == "refresh_token" {
			rt := p.refresh[i%len(p.refresh)]
			out[i] = func(ctx context.Context) (int, error) {
				r := refreshRequest(p.creds, rt)
				a, err := t.send(ctx, &r, &buf)
				if err != nil || a.status < 200 || a.status > 299 {
					return a.status, err
				}
				next, err := field(a.body, "refresh_token")
				if err != nil {
					return a.status, err
				}
				rt = next
				return a.status, nil
			}
			continue
		}
		req := p.req
		out[i] = func(ctx context.Context) (int, error) {
			a, err := t.send(ctx, &req, &buf)
			if err != nil || a.status < 200 || a.status > 299 {
				return a.status, err
			}
			return a.status, hasKey(a.body, s.expect)
		}
	}
	return out
}
