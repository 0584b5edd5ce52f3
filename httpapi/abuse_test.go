package httpapi_test

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/tokendtest"
)

func withLimits(l grant.Limits) envOption {
	return func(o *tokendtest.Options) {
		o.Config = func(c *grant.Config) { c.Limits = l }
	}
}

func withProxies(p ...string) envOption {
	return func(o *tokendtest.Options) {
		for _, s := range p {
			o.TrustedProxies = append(o.TrustedProxies, netip.MustParsePrefix(s))
		}
	}
}

func retryAfter(t *testing.T, r response) int {
	t.Helper()
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	return n
}

func (e *env) password(user, pw string, header ...string) response {
	e.t.Helper()
	body := vals("grant_type", "password", "username", user, "password", pw, "client_id", e.publicID).Encode()
	return e.do("POST", "/oauth2/token", form, body, "", header...)
}

func TestAccountLockout(t *testing.T) {
	e := newEnv(t, withLimits(grant.Limits{LockoutThreshold: 3, LockoutBase: time.Minute, LockoutMax: 3 * time.Minute}))
	for range 3 {
		wantOAuthError(t, e.password("alice", "wrong"), 400, "invalid_grant")
	}
	// Locked: even the right password is refused, with when to retry.
	r := e.password("alice", alicePassword)
	wantOAuthError(t, r, 429, "invalid_grant")
	if r.Str(t, "error_description") != "too many failed attempts, retry later" {
		t.Fatalf("%s", r.Body)
	}
	if n := retryAfter(t, r); n < 55 || n > 60 {
		t.Fatalf("Retry-After %d, want about 60", n)
	}
	// Other accounts are not affected.
	e.AddUser("bob", "pw-of-bob")
	if r := e.password("bob", "pw-of-bob"); r.Status != 200 {
		t.Fatalf("bob: %d", r.Status)
	}

	e.Clock.Advance(61 * time.Second)
	if r := e.password("alice", alicePassword); r.Status != 200 {
		t.Fatalf("after the lockout: %d %s", r.Status, r.Body)
	}
	// The success reset the count: three more failures are needed.
	for range 2 {
		e.password("alice", "wrong")
	}
	if r := e.password("alice", alicePassword); r.Status != 200 {
		t.Fatalf("two failures after a reset must not lock: %d", r.Status)
	}

	// Growing delays: each failure past the threshold doubles the lock, up to the cap.
	for range 3 {
		e.password("alice", "wrong")
	}
	e.Clock.Advance(61 * time.Second)
	wantOAuthError(t, e.password("alice", "wrong"), 400, "invalid_grant") // the 4th failure
	r = e.password("alice", alicePassword)
	if n := retryAfter(t, r); r.Status != 429 || n < 115 || n > 120 {
		t.Fatalf("second lock: %d, Retry-After %d, want about 120", r.Status, n)
	}
	e.Clock.Advance(121 * time.Second)
	e.password("alice", "wrong") // the 5th: 4 minutes, capped at 3
	if n := retryAfter(t, e.password("alice", alicePassword)); n < 175 || n > 180 {
		t.Fatalf("capped lock: Retry-After %d, want about 180", n)
	}
}

// TestLockoutRevealsNothing: an unknown username is counted and locked
// exactly like a real one.
func TestLockoutRevealsNothing(t *testing.T) {
	e := newEnv(t, withLimits(grant.Limits{LockoutThreshold: 3, LockoutBase: time.Minute, LockoutMax: time.Minute}))
	var real, ghost []response
	for range 4 {
		real = append(real, e.password("alice", "wrong"))
		ghost = append(ghost, e.password("nobody", "wrong"))
	}
	for i := range real {
		if real[i].Status != ghost[i].Status || string(real[i].Body) != string(ghost[i].Body) {
			t.Fatalf("attempt %d differs: %d %s / %d %s", i, real[i].Status, real[i].Body, ghost[i].Status, ghost[i].Body)
		}
	}
	if real[3].Status != 429 {
		t.Fatalf("the 4th attempt: %d", real[3].Status)
	}
}

func TestRateLimitPerIP(t *testing.T) {
	e := newEnv(t, withLimits(grant.Limits{RateLimit: 5, RateWindow: time.Minute}), withProxies("127.0.0.1/32"))
	from := func(ip string) []string { return []string{"X-Forwarded-For", "198.51.100.7, " + ip} }
	cc := vals("grant_type", "client_credentials").Encode()
	// Correct traffic is never throttled.
	for range 20 {
		if r := e.do("POST", "/oauth2/token", form, cc, e.basic(), from("203.0.113.1")...); r.Status != 200 {
			t.Fatalf("correct requests: %d", r.Status)
		}
	}
	for range 5 {
		r := e.do("POST", "/oauth2/token", form, cc, e.clientID+":wrong", from("203.0.113.1")...)
		wantOAuthError(t, r, 401, "invalid_client")
	}
	// Over the limit: every credential check from that address is refused.
	r := e.do("POST", "/oauth2/token", form, cc, e.basic(), from("203.0.113.1")...)
	wantOAuthError(t, r, 429, "invalid_request")
	if n := retryAfter(t, r); n > 60 {
		t.Fatalf("Retry-After %d", n)
	}
	wantOAuthError(t, e.do("POST", "/oauth2/token", form, vals("grant_type", "password", "username", "alice", "password", alicePassword, "client_id", e.publicID).Encode(), "", from("203.0.113.1")...), 429, "invalid_request")
	// A request that presents a token is never refused by the limit.
	if r := e.do("GET", "/userinfo", "", "", "", append(from("203.0.113.1"), "Authorization", "Bearer x")...); r.Status != 401 {
		t.Fatalf("userinfo from a throttled address: %d, want 401 (a token check, never throttled)", r.Status)
	}
	// Another address, and the proxy's own requests, are not affected.
	if r := e.do("POST", "/oauth2/token", form, cc, e.basic(), from("203.0.113.2")...); r.Status != 200 {
		t.Fatalf("another address: %d", r.Status)
	}
	if r := e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.basic()); r.Status != 200 {
		t.Fatalf("the proxy itself: %d", r.Status)
	}
	// The window ends.
	e.Clock.Advance(61 * time.Second)
	if r := e.do("POST", "/oauth2/token", form, cc, e.basic(), from("203.0.113.1")...); r.Status != 200 {
		t.Fatalf("after the window: %d", r.Status)
	}
}

// TestForwardedForNeedsATrustedProxy: without --trusted-proxies a client
// cannot pick the address it is counted under.
func TestForwardedForNeedsATrustedProxy(t *testing.T) {
	e := newEnv(t, withLimits(grant.Limits{RateLimit: 3, RateWindow: time.Minute}))
	cc := vals("grant_type", "client_credentials").Encode()
	for i := range 3 {
		e.do("POST", "/oauth2/token", form, cc, e.clientID+":wrong", "X-Forwarded-For", "203.0.113."+strconv.Itoa(i))
	}
	r := e.do("POST", "/oauth2/token", form, cc, e.basic(), "X-Forwarded-For", "203.0.113.99")
	wantOAuthError(t, r, 429, "invalid_request")
}

// TestAuditTrail runs the flows and reads the trail back from the store.
func TestAuditTrail(t *testing.T) {
	e := newEnv(t, withLimits(grant.Limits{LockoutThreshold: 2, LockoutBase: time.Minute, LockoutMax: time.Minute}))
	login := e.login()
	rt := login.Str(t, "refresh_token")
	rt2 := e.refresh(rt).Str(t, "refresh_token")
	e.Clock.Advance(11 * time.Second)
	e.refresh(rt) // reuse: theft
	cc := e.ccToken()
	e.post("/oauth2/revoke", vals("token", cc), e.basic())
	e.post("/oauth2/token", vals("grant_type", "client_credentials"), e.clientID+":nope")
	e.password("alice", "wrong")
	e.password("alice", "wrong")
	e.password("alice", "wrong")
	e.rotate("ES256", 0)
	kids, _ := e.Engine.RotateDueKeys(context.Background()) // off in this env: nothing
	_ = kids
	e.Auditor.Flush(context.Background())

	events, err := e.Store.ListAudit(context.Background(), tokend.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, ev := range events {
		seen[ev.Event]++
		if ev.IP != "127.0.0.1" && ev.Event != "key.rotated" {
			t.Errorf("event %s without the client IP: %+v", ev.Event, ev)
		}
		if ev.At.IsZero() || ev.Outcome == "" {
			t.Errorf("incomplete event %+v", ev)
		}
		for _, secret := range []string{alicePassword, e.clientSecret, rt, rt2, cc, login.Str(t, "access_token"), "nope", "wrong"} {
			if strings.Contains(ev.Subject+ev.ClientID+ev.Detail, secret) {
				t.Errorf("event %s carries a secret", ev.Event)
			}
		}
	}
	for _, want := range []string{"token.issued", "token.refreshed", "refresh.reuse_detected", "token.revoked", "client.auth_failed", "login.failed", "account.locked", "login.locked"} {
		if seen[want] == 0 {
			t.Errorf("no %s event; have %v", want, seen)
		}
	}
	if seen["token.issued"] < 2 {
		t.Errorf("issuances: %d", seen["token.issued"])
	}
	for _, ev := range events {
		if ev.Event == "token.issued" && ev.Dialect != "oauth" {
			t.Errorf("issuance without its dialect: %+v", ev)
		}
	}
}

// TestTokensNeverThrottle: expired, forged and revoked tokens presented at
// /userinfo, introspection, revocation and the refresh grant, far past the
// per-IP limit, never make the address's correct client_credentials
// request a 429 (before the fix, 30 expired tokens at /userinfo did).
func TestTokensNeverThrottle(t *testing.T) {
	e := newEnv(t, withLimits(grant.Limits{RateLimit: 5, RateWindow: time.Minute}), withProxies("127.0.0.1/32"))
	from := []string{"X-Forwarded-For", "203.0.113.40"}
	access := e.login().Str(t, "access_token")
	e.Clock.Advance(time.Hour) // expired
	forged := access[:len(access)-4] + "AAAA"
	for _, tok := range []string{access, forged, "garbage"} {
		for range 10 {
			if r := e.do("GET", "/userinfo", "", "", "", append(from, "Authorization", "Bearer "+tok)...); r.Status != 401 {
				t.Fatalf("userinfo: %d %s", r.Status, r.Body)
			}
			if r := e.do("POST", "/oauth2/introspect", form, vals("token", tok).Encode(), e.basic(), from...); r.Status != 200 {
				t.Fatalf("introspect: %d %s", r.Status, r.Body)
			}
			if r := e.do("POST", "/oauth2/revoke", form, vals("token", tok).Encode(), e.basic(), from...); r.Status != 200 {
				t.Fatalf("revoke: %d %s", r.Status, r.Body)
			}
			r := e.do("POST", "/oauth2/token", form, vals("grant_type", "refresh_token", "refresh_token", "rt1_"+tok[:min(len(tok), 20)], "client_id", e.publicID).Encode(), "", from...)
			wantOAuthError(t, r, 400, "invalid_grant")
		}
	}
	cc := vals("grant_type", "client_credentials").Encode()
	if r := e.do("POST", "/oauth2/token", form, cc, e.basic(), from...); r.Status != 200 {
		t.Fatalf("a correct client behind the same address: %d %s", r.Status, r.Body)
	}

	// Over the limit (wrong client secrets), the address's secret checks
	// are refused, but not its requests that present a token, even those
	// that also authenticate a client.
	e.Clock.Advance(-time.Hour)
	fresh := e.login()
	for range 5 {
		e.do("POST", "/oauth2/token", form, cc, e.clientID+":wrong", from...)
	}
	wantOAuthError(t, e.do("POST", "/oauth2/token", form, cc, e.basic(), from...), 429, "invalid_request")
	if r := e.do("POST", "/oauth2/introspect", form, vals("token", fresh.Str(t, "access_token")).Encode(), e.basic(), from...); r.Status != 200 || !strings.Contains(string(r.Body), `"active":true`) {
		t.Fatalf("introspection from a throttled address: %d %s", r.Status, r.Body)
	}
	r := e.do("POST", "/oauth2/token", form, vals("grant_type", "refresh_token", "refresh_token", fresh.Str(t, "refresh_token"), "client_id", e.publicID).Encode(), "", from...)
	if r.Status != 200 {
		t.Fatalf("refresh from a throttled address: %d %s", r.Status, r.Body)
	}
	if r := e.do("POST", "/oauth2/revoke", form, vals("token", r.Str(t, "refresh_token"), "client_id", e.publicID).Encode(), "", from...); r.Status != 200 {
		t.Fatalf("revocation from a throttled address: %d %s", r.Status, r.Body)
	}
}

// TestAuditKeepsNoTypedUsername: a failed login's audit events name the
// account by a keyed hash and, when the name exists, by the user's id;
// never by the name typed, which is often a password typed into the wrong
// field.
func TestAuditKeepsNoTypedUsername(t *testing.T) {
	e := newEnv(t, withLimits(grant.Limits{LockoutThreshold: 2, LockoutBase: time.Minute, LockoutMax: time.Minute}))
	const typed = "Tr0ub4dor&3-typed-as-a-name"
	for range 3 {
		e.password(typed, "whatever")
		e.password("alice", "wrong")
	}
	e.Auditor.Flush(context.Background())
	events, err := e.Store.ListAudit(context.Background(), tokend.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	subjects := map[string]map[string]bool{} // event -> subjects
	for _, ev := range events {
		if strings.Contains(ev.Subject+ev.ClientID+ev.Detail+ev.Event, typed) || ev.Subject == "alice" {
			t.Fatalf("audit event stores the typed username: %+v", ev)
		}
		if subjects[ev.Event] == nil {
			subjects[ev.Event] = map[string]bool{}
		}
		subjects[ev.Event][ev.Subject] = true
	}
	if !subjects["login.failed"][e.aliceID] {
		t.Errorf("alice's failed login does not name her id: %v", subjects["login.failed"])
	}
	hashed := 0
	for s := range subjects["login.failed"] {
		if strings.HasPrefix(s, "acct:") {
			hashed++
		}
	}
	if hashed != 1 || !subjects["login.locked"][firstKey(subjects["login.failed"], "acct:")] {
		t.Errorf("the unknown name's events are not under one keyed hash: %v", subjects)
	}
}

func firstKey(m map[string]bool, prefix string) string {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return k
		}
	}
	return ""
}
