package verify_test

import (
	"crypto/ecdsa"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/tokendtest"
	"github.com/tokend/tokend/verify"
)

// realKey is the issuer's current ES256 signing key, to make tokens with
// claims tokend would not write.
func (is *issuer) realKey() *ecdsa.PrivateKey {
	is.t.Helper()
	k, err := is.Engine.Ring().Signing("ES256", is.Clock.Now())
	if err != nil {
		is.t.Fatal(err)
	}
	return k.Private.(*ecdsa.PrivateKey)
}

func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestVerifyAccessToken(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t)
	tok := is.appToken("orders:read")
	c := mustVerify(t, v, tok)
	_, raw := tokendtest.Decode(tok)
	if c.Issuer != is.url || c.Subject != is.appID || c.ClientID != is.appID || c.ID != raw["jti"] ||
		len(c.Audience) != 1 || c.Audience[0] != audience || !c.HasScope("orders:read") || c.HasScope("orders:write") ||
		c.ExpiresAt.Unix() != int64(raw["exp"].(float64)) || c.IssuedAt.Unix() != int64(raw["iat"].(float64)) {
		t.Errorf("claims %+v do not match the token's %v", c, raw)
	}
	var all map[string]any
	if err := c.Decode(&all); err != nil || all["client_id"] != is.appID {
		t.Errorf("Decode: %v %v", all, err)
	}
	access, _ := is.login()
	if c := mustVerify(t, v, access); c.Subject != is.aliceID || c.Username != "alice" || c.SessionID == "" {
		t.Errorf("alice's claims %+v", c)
	}
}

// Every token that must be refused is refused, with the error that says why.
func TestVerifyRefuses(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, func(o *verify.Options) { o.KeyRefetchInterval = time.Hour })
	genuine := is.appToken("")
	h, c := tokendtest.Decode(genuine)
	key := is.realKey()
	now := is.Clock.Now()
	sign := func(h, c map[string]any) string { return tokendtest.Sign(h, c, key) }

	for _, tc := range []struct {
		name string
		tok  string
		want error
	}{
		{"wrong issuer", sign(h, with(c, "iss", "https://evil.example")), verify.ErrIssuer},
		{"issuer with a trailing slash", sign(h, with(c, "iss", is.url+"/")), verify.ErrIssuer},
		{"wrong audience", sign(h, with(c, "aud", "https://other.example")), verify.ErrAudience},
		{"refresh audience", sign(h, with(c, "aud", is.url+"/refresh")), verify.ErrAudience},
		{"no audience", sign(h, with(c, "aud", nil)), verify.ErrAudience},
		{"expired", sign(h, with(c, "exp", now.Add(-time.Second).Unix())), verify.ErrExpired},
		{"expires now", sign(h, with(c, "exp", now.Unix())), verify.ErrExpired},
		{"not yet valid", sign(h, with(c, "nbf", now.Add(time.Minute).Unix())), verify.ErrNotYetValid},
		{"issued in the future", sign(h, with(c, "iat", now.Add(time.Minute).Unix())), verify.ErrNotYetValid},
		{"typ JWT", sign(with(h, "typ", "JWT"), c), verify.ErrType},
		{"no typ", sign(with(h, "typ", nil), c), verify.ErrType},
		{"refresh token_type", sign(h, with(c, "token_type", "refresh")), verify.ErrType},
		{"alg none", tokendtest.Sign(with(h, "alg", "none"), c, nil), verify.ErrAlgorithm},
		{"HS256", tokendtest.Sign(with(h, "alg", "HS256"), c, []byte("secret")), verify.ErrAlgorithm},
		{"unknown kid", sign(with(h, "kid", "no-such-key"), c), verify.ErrUnknownKey},
		{"no kid", sign(with(h, "kid", nil), c), verify.ErrUnknownKey},
		{"tampered", genuine[:len(genuine)-4] + "AAAA", verify.ErrSignature},
		{"no exp", sign(h, with(c, "exp", nil)), verify.ErrMalformed},
		{"fractional exp", sign(h, with(c, "exp", float64(now.Add(time.Hour).Unix())+0.5)), verify.ErrMalformed},
		{"no jti", sign(h, with(c, "jti", nil)), verify.ErrMalformed},
		{"crit header", sign(with(h, "crit", []string{"exp"}), c), verify.ErrMalformed},
		{"aud of the wrong type", sign(h, with(c, "aud", 42)), verify.ErrMalformed},
		{"oversized", strings.Repeat("a", verify.MaxTokenBytes+1), verify.ErrMalformed},
		{"empty", "", verify.ErrMalformed},
		{"garbage", "not.a.token", verify.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), tc.tok)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "eyJ") {
				t.Errorf("error message carries a token: %v", err)
			}
		})
	}

	t.Run("tokendtest forgeries", func(t *testing.T) {
		f := is.NewForger()
		for _, fg := range f.Forgeries(genuine) {
			if _, err := v.Verify(t.Context(), fg.Token); err == nil {
				t.Errorf("%s: accepted", fg.Name)
			}
		}
		if n := f.Fetched.Load(); n != 0 {
			t.Errorf("a jku or x5u URL was fetched %d times", n)
		}
	})
}

func TestVerifyOptions(t *testing.T) {
	is := newIssuer(t, func(c *grant.Config) { c.ExtraAlgs = []string{"EdDSA"} })
	genuine := is.appToken("")
	h, c := tokendtest.Decode(genuine)
	key := is.realKey()
	now := is.Clock.Now()
	sign := func(h, c map[string]any) string { return tokendtest.Sign(h, c, key) }

	t.Run("leeway", func(t *testing.T) {
		v := is.verifier(t, func(o *verify.Options) { o.Leeway = 30 * time.Second })
		mustVerify(t, v, sign(h, with(c, "exp", now.Add(-10*time.Second).Unix())))
		mustVerify(t, v, sign(h, with(c, "nbf", now.Add(10*time.Second).Unix())))
		if _, err := v.Verify(t.Context(), sign(h, with(c, "exp", now.Add(-time.Minute).Unix()))); !errors.Is(err, verify.ErrExpired) {
			t.Errorf("a minute past exp with 30s leeway: %v", err)
		}
	})
	t.Run("dialect typ", func(t *testing.T) {
		v := is.verifier(t, func(o *verify.Options) { o.Types = []string{"JWT"} })
		mustVerify(t, v, sign(with(h, "typ", "JWT"), c))
		if _, err := v.Verify(t.Context(), genuine); !errors.Is(err, verify.ErrType) {
			t.Errorf("at+jwt with Types [JWT]: %v", err)
		}
	})
	t.Run("typ compared as RFC 7515 says", func(t *testing.T) {
		v := is.verifier(t)
		mustVerify(t, v, sign(with(h, "typ", "application/at+jwt"), c))
		mustVerify(t, v, sign(with(h, "typ", "AT+JWT"), c))
	})
	t.Run("pinned algorithm", func(t *testing.T) {
		v := is.verifier(t, func(o *verify.Options) { o.Algorithms = []string{"EdDSA"} })
		_, err := v.Verify(t.Context(), genuine)
		if !errors.Is(err, verify.ErrAlgorithm) {
			t.Errorf("ES256 token, EdDSA pinned: %v", err)
		}
	})
	t.Run("aud as a string", func(t *testing.T) {
		mustVerify(t, is.verifier(t), sign(h, with(c, "aud", audience)))
	})
}

func TestNewRefusesBadSettings(t *testing.T) {
	is := newIssuer(t)
	ok := is.options()
	for _, tc := range []struct {
		name   string
		issuer string
		adjust func(*verify.Options)
		want   string
	}{
		{"no audience", is.url, func(o *verify.Options) { o.Audience = "" }, "Audience"},
		{"no algorithms", is.url, func(o *verify.Options) { o.Algorithms = nil }, "Algorithms"},
		{"symmetric algorithm", is.url, func(o *verify.Options) { o.Algorithms = []string{"HS256"} }, "HS256"},
		{"alg none", is.url, func(o *verify.Options) { o.Algorithms = []string{"none"} }, "none"},
		{"no revocation choice", is.url, func(o *verify.Options) { o.ClientID, o.ClientSecret = "", "" }, "Offline"},
		{"offline and a client", is.url, func(o *verify.Options) { o.Offline = true }, "exclude"},
		{"feed wait over a minute", is.url, func(o *verify.Options) { o.FeedWait = 2 * time.Minute }, "FeedWait"},
		{"issuer with a trailing slash", is.url + "/", func(*verify.Options) {}, "names issuer"},
		{"not a URL", "tokend", func(*verify.Options) {}, "http(s)"},
		{"feed refuses the credentials", is.url, func(o *verify.Options) { o.ClientSecret = "wrong" }, "401"},
		{"no usable key", is.url, func(o *verify.Options) { o.Algorithms = []string{"RS256"} }, "no public signature key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.adjust(&o)
			v, err := verify.New(t.Context(), tc.issuer, o)
			if err == nil {
				v.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), is.rsSecret) {
				t.Errorf("error %q, want one that mentions %q (and no secret)", err, tc.want)
			}
		})
	}
	t.Run("unreachable issuer", func(t *testing.T) {
		is.stop()
		defer is.start()
		if v, err := verify.New(t.Context(), is.url, ok); err == nil {
			v.Close()
			t.Fatal("New succeeded")
		}
	})
	t.Run("offline", func(t *testing.T) {
		o := ok
		o.ClientID, o.ClientSecret, o.Offline = "", "", true
		v, err := verify.New(t.Context(), is.url, o)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		tok := is.appToken("")
		is.revoke(tok, is.appID, is.appSecret)
		mustVerify(t, v, tok) // the hole Offline accepts
	})
}
