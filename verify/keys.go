package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxDocBytes bounds the discovery document and the key set.
const maxDocBytes = 1 << 20

// fetchTimeout bounds one fetch of the metadata or the keys.
const fetchTimeout = 10 * time.Second

// discover reads the issuer's authorization server metadata (RFC 8414 §3;
// tokend also serves it at the OpenID Connect path) and returns its
// jwks_uri, after checking that the document names the same issuer
// (§3.3: otherwise anyone able to serve a document could pose as it).
func discover(ctx context.Context, client *http.Client, issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("verify: issuer %q is not an http(s) URL without query or fragment", issuer)
	}
	// §3.1: the well-known segment goes between the host and the path.
	meta := *u
	meta.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	status, err := getJSON(ctx, client, meta.String(), &doc)
	if status == http.StatusNotFound {
		meta.Path = strings.TrimSuffix(u.Path, "/") + "/.well-known/openid-configuration"
		status, err = getJSON(ctx, client, meta.String(), &doc)
	}
	if err != nil {
		return "", fmt.Errorf("verify: read the issuer's metadata: %w", err)
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("verify: the metadata at %s names issuer %q, not %q", meta.String(), doc.Issuer, issuer)
	}
	j, err := url.Parse(doc.JWKSURI)
	if err != nil || j.Host == "" || (j.Scheme != "https" && !(j.Scheme == "http" && u.Scheme == "http")) {
		return "", fmt.Errorf("verify: the issuer's jwks_uri %q is not an https URL", doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

// getJSON fetches a JSON document; it returns the status with any error.
func getJSON(ctx context.Context, client *http.Client, u string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDocBytes)).Decode(v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: %w", u, err)
	}
	return resp.StatusCode, nil
}

// keySet is one fetched key set; it never changes once stored.
type keySet struct {
	keys map[string]*jose.JSONWebKey
	raw  map[string]string // each key's JWK text
	etag string
}

// keyCache holds the issuer's keys. It refreshes them in the background
// before their Cache-Control max-age runs out, fetches at most once per
// refetchEvery for tokens that name a key it lacks, and keeps the last
// good set whenever a fetch fails.
type keyCache struct {
	client       *http.Client
	url          string
	algs         []string
	log          *slog.Logger
	refetchEvery time.Duration
	maxAge       time.Duration

	set atomic.Pointer[keySet]

	mu         sync.Mutex
	inflight   chan struct{} // closed when the fetch under way ends
	lastForced time.Time     // the last fetch an unknown kid caused
	next       time.Duration // when the background refresh is due, from the last fetch
	failing    bool
	lastErr    error     // of the last fetch
	lastGood   time.Time // the last fetch that worked
}

func (c *keyCache) lookup(kid string) *jose.JSONWebKey {
	return c.set.Load().keys[kid]
}

// start fetches the first key set; without one there is nothing to verify with.
func (c *keyCache) start(ctx context.Context) error {
	if err := c.fetch(ctx); err != nil {
		return fmt.Errorf("verify: read the issuer's keys: %w", err)
	}
	return nil
}

// refetchFor fetches the key set again for a token whose kid the cache
// lacks, unless one such fetch ran less than refetchEvery ago: forged kids
// cannot make the verifier hammer the issuer. Callers that come while a
// fetch runs wait for it. It returns the key if it is there now.
func (c *keyCache) refetchFor(ctx context.Context, kid string) *jose.JSONWebKey {
	c.mu.Lock()
	ch := c.inflight
	if ch == nil {
		if time.Since(c.lastForced) < c.refetchEvery {
			c.mu.Unlock()
			return nil
		}
		c.lastForced = time.Now()
		ch = make(chan struct{})
		c.inflight = ch
		c.mu.Unlock()
		// The fetch serves every waiter: it does not end with this caller's ctx.
		go c.fetchLocked(context.WithoutCancel(ctx), ch)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return nil
	}
	return c.lookup(kid)
}

// fetch fetches the key set now, or waits for the fetch under way.
func (c *keyCache) fetch(ctx context.Context) error {
	c.mu.Lock()
	ch := c.inflight
	if ch == nil {
		ch = make(chan struct{})
		c.inflight = ch
		c.mu.Unlock()
		return c.fetchLocked(ctx, ch)
	}
	c.mu.Unlock()
	select {
	case <-ch:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.lastErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetchLocked runs one fetch as the owner of inflight (ch), and ends it.
func (c *keyCache) fetchLocked(ctx context.Context, ch chan struct{}) error {
	maxAge, err := c.get(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight, c.lastErr = nil, err
	close(ch)
	switch {
	case err != nil && !c.failing:
		c.failing = true
		if c.set.Load() != nil {
			c.log.Warn("fetching the issuer's keys failed; verifying with the last ones read", "url", c.url, "err", err)
		}
	case err == nil && c.failing:
		c.failing = false
		c.log.Info("fetching the issuer's keys works again", "url", c.url)
	}
	if err == nil {
		c.lastGood = time.Now()
	}
	switch {
	case err != nil:
	case maxAge < 0: // no max-age given
		c.next = min(5*time.Minute, c.maxAge)
	default:
		c.next = min(max(maxAge*3/4, 5*time.Second), c.maxAge)
	}
	return err
}

// get fetches the key set (conditionally, when one is held) and stores it;
// it returns the max-age its Cache-Control gives (-1: none).
func (c *keyCache) get(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", c.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	old := c.set.Load()
	if old != nil && old.etag != "" {
		req.Header.Set("If-None-Match", old.etag)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	maxAge := cacheMaxAge(resp.Header.Get("Cache-Control"))
	switch {
	case resp.StatusCode == http.StatusNotModified && old != nil:
		return maxAge, nil
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("GET %s: status %d", c.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes))
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", c.url, err)
	}
	set, err := c.parse(body)
	if err != nil {
		return 0, err
	}
	set.etag = resp.Header.Get("ETag")
	c.set.Store(set)
	return maxAge, nil
}

// parse reads a JWKS (RFC 7517 §5), keeping the public signature keys that
// have a kid and suit an accepted algorithm. A key it cannot read is left
// out, not the whole set; a set with no key left is an error. A key that
// is the same as in the set held stays the same *JSONWebKey, which is how
// the token cache knows its entries still hold.
func (c *keyCache) parse(body []byte) (*keySet, error) {
	old := c.set.Load()
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	set := &keySet{keys: map[string]*jose.JSONWebKey{}, raw: map[string]string{}}
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if k.KeyID == "" || !k.IsPublic() || (k.Use != "" && k.Use != "sig") || !c.suits(&k) {
			continue
		}
		set.keys[k.KeyID], set.raw[k.KeyID] = &k, string(raw)
		if old != nil && old.raw[k.KeyID] == string(raw) {
			set.keys[k.KeyID] = old.keys[k.KeyID]
		}
	}
	if len(set.keys) == 0 {
		return nil, errors.New("key set: no public signature key for the accepted algorithms")
	}
	return set, nil
}

// suits reports whether k can verify one of the accepted algorithms.
func (c *keyCache) suits(k *jose.JSONWebKey) bool {
	for _, a := range c.algs {
		if k.Algorithm != "" && k.Algorithm != a {
			continue
		}
		switch k.Key.(type) {
		case *ecdsa.PublicKey:
			if strings.HasPrefix(a, "ES") {
				return true
			}
		case ed25519.PublicKey:
			if a == "EdDSA" {
				return true
			}
		case *rsa.PublicKey:
			if strings.HasPrefix(a, "RS") || strings.HasPrefix(a, "PS") {
				return true
			}
		}
	}
	return false
}

// cacheMaxAge reads max-age from a Cache-Control header (RFC 9111 §5.2.2.1);
// no-store and no-cache count as 0, no max-age at all as -1.
func cacheMaxAge(h string) time.Duration {
	for _, d := range strings.Split(h, ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		if d == "no-store" || d == "no-cache" {
			return 0
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			if n, err := strconv.Atoi(strings.Trim(v, `"`)); err == nil && n >= 0 {
				return time.Duration(min(n, 1<<30)) * time.Second
			}
		}
	}
	return -1
}

// run refreshes the key set in the background until ctx ends: when three
// quarters of its max-age have passed (at least 5s, at most maxAge), and
// after a failure with a growing delay, keeping the last good set.
func (c *keyCache) run(ctx context.Context) {
	var failures int
	for {
		c.mu.Lock()
		wait := c.next
		c.mu.Unlock()
		if failures > 0 {
			wait = backoff(failures, min(time.Minute, c.maxAge))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := c.fetch(ctx); err != nil {
			failures++
		} else {
			failures = 0
		}
	}
}

// backoff is the delay after n failures in a row: doubling from 500ms up
// to ceiling, with jitter so that many verifiers do not retry in step.
func backoff(n int, ceiling time.Duration) time.Duration {
	d := 500 * time.Millisecond
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d/2 + rand.N(d/2+1)
}
