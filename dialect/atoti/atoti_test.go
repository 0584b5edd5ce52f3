package atoti_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/dialect/atoti"
	"github.com/tokend/tokend/tokendtest"
)

func TestDefaultConfig(t *testing.T) {
	if atoti.DefaultConfig != (atoti.Config{Alg: "RS512", TTL: 12 * time.Hour}) {
		t.Fatalf("DefaultConfig %+v, want RS512 and 12h (activeviam.jwt.expiration=43200)", atoti.DefaultConfig)
	}
}

func TestBasicLogin(t *testing.T) {
	e := newEnv(t, atoti.DefaultConfig)
	cases := []struct {
		name, user, pwd, path string
		authorities           []any
	}{
		{"one role", "alice", alicePwd, path, []any{"ROLE_USER"}},
		{"one role, trailing slash", "alice", alicePwd, path + "/", []any{"ROLE_USER"}},
		{"two roles, colon in password", "bob", bobPwd, path, []any{"ROLE_USER", "ROLE_ADMIN"}},
		{"two roles, trailing slash", "bob", bobPwd, path + "/", []any{"ROLE_USER", "ROLE_ADMIN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.Clock.Now().Unix()
			tok := wantToken(t, e.get(tc.path, basic(tc.user, tc.pwd)))
			claims, h := e.VerifyWithJWKS(tok)
			if h.Algorithm != "RS512" {
				t.Errorf("alg %q, want RS512", h.Algorithm)
			}
			if typ := h.ExtraHeaders[jose.HeaderType]; typ != "JWT" {
				t.Errorf("typ %v, want JWT", typ)
			}
			if _, ok := e.jwksKey(t, h.KeyID).Key.(*rsa.PublicKey); !ok {
				t.Errorf("kid %q is not an RSA key", h.KeyID)
			}
			var names []string
			for k := range claims {
				names = append(names, k)
			}
			slices.Sort(names)
			if want := []string{"aud", "authorities", "exp", "iat", "iss", "jti", "sub"}; !slices.Equal(names, want) {
				t.Errorf("claims %v, want exactly %v", names, want)
			}
			if claims["sub"] != tc.user || claims["iss"] != tokendtest.Issuer {
				t.Errorf("sub %v iss %v", claims["sub"], claims["iss"])
			}
			if got, _ := claims["authorities"].([]any); !slices.Equal(got, tc.authorities) {
				t.Errorf("authorities %v, want %v", claims["authorities"], tc.authorities)
			}
			iat, exp := int64(claims["iat"].(float64)), int64(claims["exp"].(float64))
			if iat < before || iat > e.Clock.Now().Unix() || exp-iat != 12*3600 {
				t.Errorf("iat %d exp %d: want iat now and exp = iat + 12 h", iat, exp)
			}
			if jti, _ := claims["jti"].(string); !hex32.MatchString(jti) {
				t.Errorf("jti %v", claims["jti"])
			}
		})
	}
	t.Run("lowercase basic scheme", func(t *testing.T) {
		auth := "basic " + strings.TrimPrefix(basic("alice", alicePwd), "Basic ")
		claims, _ := e.VerifyWithJWKS(wantToken(t, e.get(path, auth)))
		if claims["sub"] != "alice" {
			t.Fatalf("sub %v", claims["sub"])
		}
	})
	t.Run("every login mints a new token with a unique jti", func(t *testing.T) {
		seen := map[string]bool{}
		toks := map[string]bool{}
		for range 5 {
			tok := e.login(t, "alice", alicePwd)
			claims, _ := e.VerifyWithJWKS(tok)
			jti := claims["jti"].(string)
			if seen[jti] || toks[tok] {
				t.Fatalf("jti %s or token repeated", jti)
			}
			seen[jti], toks[tok] = true, true
		}
	})
}

// A user without roles gets "authorities": [] (an empty list, not an
// absent claim), so that Atoti's authority mapping sees an empty list.
func TestBasicLoginNoRoles(t *testing.T) {
	e := newEnv(t, atoti.DefaultConfig)
	claims, _ := e.VerifyWithJWKS(e.login(t, "norole", nonePwd))
	if claims["sub"] != "norole" {
		t.Fatalf("sub %v", claims["sub"])
	}
	got, ok := claims["authorities"].([]any)
	if !ok || len(got) != 0 {
		t.Fatalf("authorities claim is %s, want []", jsonString(claims["authorities"]))
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	if v == nil {
		return "absent"
	}
	return string(b)
}

func TestConfiguredAlgorithm(t *testing.T) {
	cfg := atoti.DefaultConfig
	cfg.Alg = "ES256"
	e := newEnv(t, cfg)
	tok := e.login(t, "alice", alicePwd)
	claims, h := e.VerifyWithJWKS(tok)
	if h.Algorithm != "ES256" {
		t.Fatalf("alg %q, want ES256", h.Algorithm)
	}
	if k := e.jwksKey(t, h.KeyID); k.Algorithm != "ES256" {
		t.Fatalf("JWKS key alg %q", k.Algorithm)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 12*3600 {
		t.Fatalf("lifetime %v s", exp-iat)
	}
	if got := wantToken(t, e.get(path, "Bearer "+tok)); got != tok {
		t.Fatal("ES256 token not echoed unchanged")
	}

	t.Run("TTL", func(t *testing.T) {
		cfg := atoti.Config{Alg: "RS512", TTL: time.Hour}
		e := newEnv(t, cfg)
		tok := e.login(t, "alice", alicePwd)
		claims, _ := e.VerifyWithJWKS(tok)
		if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 3600 {
			t.Fatalf("lifetime %v s, want 3600", exp-iat)
		}
		e.Clock.Advance(time.Hour + time.Second)
		wantUnauthorized(t, e.get(path, "Bearer "+tok))
	})
}

func TestEcho(t *testing.T) {
	e := newEnv(t, atoti.DefaultConfig)
	atotiTok := e.login(t, "alice", alicePwd)
	rolelessTok := e.login(t, "norole", nonePwd)
	ccTok := e.ccToken(t, e.clientID, e.clientSecret)
	issued := e.metric(t, `tokend_tokens_issued_total{dialect="atoti",grant="password"}`)
	lastLogin := userByID(t, e, e.aliceID).LastLoginAt

	// Time passes: an echoed token must not come back extended.
	e.Clock.Advance(10 * time.Minute)
	tokens := []struct{ name, tok string }{
		{"atoti token", atotiTok},
		{"atoti token of a user without roles", rolelessTok},
		{"oauth client_credentials token", ccTok},
	}
	schemes := []string{"Bearer", "bearer", "BEARER", "bEaReR", "Jwt", "JWT", "jwt"}
	for _, tc := range tokens {
		for _, scheme := range schemes {
			for _, p := range []string{path, path + "/"} {
				t.Run(tc.name+"/"+scheme+" "+p, func(t *testing.T) {
					if got := wantToken(t, e.get(p, scheme+" "+tc.tok)); got != tc.tok {
						t.Fatalf("got another token back:\n got %s\nwant %s", got, tc.tok)
					}
				})
			}
		}
	}
	t.Run("extra spaces around the token", func(t *testing.T) {
		if got := wantToken(t, e.get(path, "Bearer   "+atotiTok+"  ")); got != atotiTok {
			t.Fatal("got another token back")
		}
	})
	t.Run("echo mints nothing and is no login", func(t *testing.T) {
		if got := e.metric(t, `tokend_tokens_issued_total{dialect="atoti",grant="password"}`); got != issued {
			t.Fatalf("issued counter moved: %q -> %q", issued, got)
		}
		if got := userByID(t, e, e.aliceID).LastLoginAt; !got.Equal(lastLogin) {
			t.Fatalf("last_login_at moved on an echo: %v -> %v", lastLogin, got)
		}
	})
}

func userByID(t *testing.T, e *env, id string) *tokend.User {
	t.Helper()
	u, err := e.Store.UserByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// forge returns tok with its payload changed by edit and the signature kept.
func forge(t *testing.T, tok string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ := json.Marshal(m)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// resign signs tok's payload with key under alg, keeping its kid and typ.
func resign(t *testing.T, tok string, alg jose.SignatureAlgorithm, key any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	var hdr struct {
		Kid string `json:"kid"`
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(hb, &hdr); err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", hdr.Kid)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUnauthorized(t *testing.T) {
	e := newEnv(t, atoti.DefaultConfig)
	tok := e.login(t, "alice", alicePwd)
	parts := strings.Split(tok, ".")

	// A signature with one character changed in its middle.
	sig := []byte(parts[2])
	if sig[10] == 'A' {
		sig[10] = 'B'
	} else {
		sig[10] = 'A'
	}
	badSig := parts[0] + "." + parts[1] + "." + string(sig)

	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, h := e.VerifyWithJWKS(tok)
	n := e.jwksKey(t, h.KeyID).Key.(*rsa.PublicKey).N.Bytes()

	// A token from another tokend (another key ring).
	foreign := newEnv(t, atoti.DefaultConfig).login(t, "alice", alicePwd)

	// An opaque refresh token of the standard endpoints.
	refreshTok := "rt1_" + strings.Repeat("A", 40)

	cases := []struct{ name, auth string }{
		{"no Authorization header", ""},
		{"wrong password", basic("alice", "wrong")},
		{"password of another user", basic("alice", bobPwd)},
		{"unknown user", basic("mallory", alicePwd)},
		{"disabled user", basic("carol", "carol's password")},
		{"empty username", basic("", alicePwd)},
		{"empty password", basic("alice", "")},
		{"both empty", basic("", "")},
		{"username case differs", basic("Alice", alicePwd)},
		{"Basic without credentials", "Basic"},
		{"Basic with blank credentials", "Basic    "},
		{"Basic not base64", "Basic !!!not-base64!!!"},
		{"Basic without a colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice"+alicePwd))},
		{"unknown scheme Digest", `Digest username="alice", realm="atoti"`},
		{"unknown scheme Token", "Token " + tok},
		{"unknown scheme Negotiate", "Negotiate YIIC"},
		{"Basic credentials under Bearer", "Bearer " + strings.TrimPrefix(basic("alice", alicePwd), "Basic ")},
		{"Bearer without a token", "Bearer"},
		{"Bearer with a blank token", "Bearer    "},
		{"Bearer garbage", "Bearer not.a.jwt"},
		{"Jwt garbage", "Jwt garbage"},
		{"tampered signature", "Bearer " + badSig},
		{"tampered payload", "Bearer " + forge(t, tok, func(m map[string]any) { m["sub"] = "bob" })},
		{"extended exp", "Jwt " + forge(t, tok, func(m map[string]any) { m["exp"] = m["exp"].(float64) + 3600 })},
		{"truncated", "Bearer " + tok[:len(tok)-4]},
		{"alg none", "Bearer " + noneHeader + "." + parts[1] + "."},
		{"signed with another RSA key under the real kid", "Bearer " + resign(t, tok, jose.RS512, rsaKey)},
		{"HS256 with the public key as secret", "Bearer " + resign(t, tok, jose.HS256, n)},
		{"token from another key ring", "Bearer " + foreign},
		{"opaque refresh token", "Bearer " + refreshTok},
		{"oversized token", "Bearer " + strings.Repeat("a", 9000)},
	}
	for _, tc := range cases {
		for _, p := range []string{path, path + "/"} {
			t.Run(tc.name+" "+p, func(t *testing.T) {
				wantUnauthorized(t, e.get(p, tc.auth))
			})
		}
	}
	t.Run("failures are counted", func(t *testing.T) {
		if got := e.metric(t, `tokend_failures_total{dialect="atoti",reason="invalid_grant"}`); got == "" {
			t.Fatal("no atoti invalid_grant failures in /metrics")
		}
		if got := e.metric(t, `tokend_failures_total{dialect="atoti",reason="invalid_token"}`); got == "" {
			t.Fatal("no atoti invalid_token failures in /metrics")
		}
	})
}

func TestExpiry(t *testing.T) {
	e := newEnv(t, atoti.DefaultConfig)
	atotiTok := e.login(t, "alice", alicePwd)
	ccTok := e.ccToken(t, e.clientID, e.clientSecret)

	e.Clock.Advance(15*time.Minute + time.Second) // past the engine's access TTL
	wantUnauthorized(t, e.get(path, "Bearer "+ccTok))
	if got := wantToken(t, e.get(path, "Bearer "+atotiTok)); got != atotiTok {
		t.Fatal("atoti token not echoed unchanged")
	}

	e.Clock.Advance(12*time.Hour - 15*time.Minute - 2*time.Second) // a second before exp
	if got := wantToken(t, e.get(path, "Jwt "+atotiTok)); got != atotiTok {
		t.Fatal("atoti token not echoed unchanged just before it expires")
	}
	e.Clock.Advance(2 * time.Second)
	for _, scheme := range []string{"Bearer", "Jwt"} {
		t.Run(scheme, func(t *testing.T) {
			wantUnauthorized(t, e.get(path, scheme+" "+atotiTok))
		})
	}
	e.wantInactive(t, atotiTok)
	t.Run("a Basic login still works and gets a fresh 12 h", func(t *testing.T) {
		claims, _ := e.VerifyWithJWKS(e.login(t, "alice", alicePwd))
		if int64(claims["exp"].(float64)) <= e.Clock.Now().Unix()+12*3600-5 {
			t.Fatalf("exp %v", claims["exp"])
		}
	})
}

func TestRevoked(t *testing.T) {
	cases := []struct {
		name string
		// revoke revokes tok as some client.
		revoke func(t *testing.T, e *env, tok string)
	}{
		{"by a confidential client", func(t *testing.T, e *env, tok string) { e.revoke(t, e.clientID, e.clientSecret, tok) }},
		{"by any other client (the token was issued to none)", func(t *testing.T, e *env, tok string) { e.revoke(t, e.otherID, e.otherSecret, tok) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, atoti.DefaultConfig)
			tok := e.login(t, "alice", alicePwd)
			keep := e.login(t, "alice", alicePwd)
			tc.revoke(t, e, tok)
			wantUnauthorized(t, e.get(path, "Bearer "+tok))
			wantUnauthorized(t, e.get(path+"/", "Jwt "+tok))
			e.wantInactive(t, tok)
			// Only that token: another of the same user still stands.
			if got := wantToken(t, e.get(path, "Bearer "+keep)); got != keep {
				t.Fatal("other token not echoed")
			}
		})
	}
	t.Run("oauth token revoked by its client", func(t *testing.T) {
		e := newEnv(t, atoti.DefaultConfig)
		tok := e.ccToken(t, e.clientID, e.clientSecret)
		if got := wantToken(t, e.get(path, "Bearer "+tok)); got != tok {
			t.Fatal("not echoed")
		}
		e.revoke(t, e.clientID, e.clientSecret, tok)
		wantUnauthorized(t, e.get(path, "Bearer "+tok))
	})
}

func TestDisabled(t *testing.T) {
	t.Run("user", func(t *testing.T) {
		e := newEnv(t, atoti.DefaultConfig)
		tok := e.login(t, "alice", alicePwd)
		if m := e.introspect(t, tok); m["active"] != true {
			t.Fatalf("introspection before disabling: %v", m)
		}
		if err := e.Store.DisableUser(context.Background(), e.aliceID, e.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		wantUnauthorized(t, e.get(path, "Bearer "+tok))
		wantUnauthorized(t, e.get(path, basic("alice", alicePwd)))
		e.wantInactive(t, tok)
		// Other users are untouched.
		e.login(t, "bob", bobPwd)
	})
	t.Run("client of an oauth token", func(t *testing.T) {
		e := newEnv(t, atoti.DefaultConfig)
		tok := e.ccToken(t, e.clientID, e.clientSecret)
		if err := e.Store.DisableClient(context.Background(), e.clientID); err != nil {
			t.Fatal(err)
		}
		if err := e.Engine.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		wantUnauthorized(t, e.get(path, "Bearer "+tok))
	})
}

// A user's username may look like a UUID (tokend user add takes any name,
// and end users of the taiki dialect are named by their id). Their Atoti
// token, whose sub is the username, must stand like any other.
func TestUsernameLooksLikeUUID(t *testing.T) {
	t.Run("no user has that id", func(t *testing.T) {
		e := newEnv(t, atoti.DefaultConfig)
		name := uuid.Must(uuid.NewV7()).String()
		e.AddUser(name, alicePwd, "ROLE_USER")
		tok := e.login(t, name, alicePwd)
		if r := e.get(path, "Bearer "+tok); r.Status != 200 {
			t.Fatalf("the Atoti token of user %s is refused: %d", name, r.Status)
		}
	})
	t.Run("another user has that id", func(t *testing.T) {
		e := newEnv(t, atoti.DefaultConfig)
		// mallory's username is bob's id; disabling mallory must end her token.
		malloryID := e.AddUser(e.bobID, "mallory's password")
		tok := e.login(t, e.bobID, "mallory's password")
		if err := e.Store.DisableUser(context.Background(), malloryID, e.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		if r := e.get(path, "Bearer "+tok); r.Status != 401 {
			t.Fatalf("a disabled user's Atoti token is still echoed: %d", r.Status)
		}
	})
}

func TestMethods(t *testing.T) {
	e := newEnv(t, atoti.DefaultConfig)
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		for _, p := range []string{path, path + "/"} {
			t.Run(method+" "+p, func(t *testing.T) {
				r := e.Do(method, p, "application/json", `{"username":"alice","password":"x"}`,
					"Authorization", basic("alice", alicePwd))
				if r.Status != 405 {
					t.Fatalf("status %d, want 405 (body %s)", r.Status, r.Body)
				}
				if a := r.Header.Get("Allow"); a != "GET" {
					t.Fatalf("Allow %q, want GET", a)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Fatalf("Content-Type %q", ct)
				}
				r.JSON(t) // a JSON object
				if strings.Contains(string(r.Body), "eyJ") {
					t.Fatalf("405 body carries a token: %s", r.Body)
				}
			})
		}
	}
}

func TestRequestPartsIgnored(t *testing.T) {
	e := newEnv(t, atoti.DefaultConfig)
	auth := basic("alice", alicePwd)
	cases := []struct{ name, path, contentType, body string }{
		{"query string", path + "?username=bob&password=x", "", ""},
		{"query string, trailing slash", path + "/?token=abc", "", ""},
		{"JSON body naming another user", path, "application/json", `{"username":"bob","password":"` + bobPwd + `"}`},
		{"malformed JSON body", path, "application/json", `{"username":`},
		{"wrong content type", path, "text/plain", "hello"},
		{"form body", path, "application/x-www-form-urlencoded", "username=bob&password=x"},
		{"body over 64 KiB", path, "application/json", `{"x":"` + strings.Repeat("a", 70<<10) + `"}`},
		{"null body", path, "application/json", "null"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := wantToken(t, e.Do("GET", tc.path, tc.contentType, tc.body, "Authorization", auth))
			if claims, _ := e.VerifyWithJWKS(tok); claims["sub"] != "alice" {
				t.Fatalf("sub %v, want alice", claims["sub"])
			}
		})
	}
	t.Run("a body does not authenticate", func(t *testing.T) {
		wantUnauthorized(t, e.Do("GET", path, "application/json", `{"username":"alice","password":"`+alicePwd+`"}`))
	})
	t.Run("a query token does not authenticate", func(t *testing.T) {
		tok := e.login(t, "alice", alicePwd)
		wantUnauthorized(t, e.get(path+"?access_token="+tok, ""))
	})
}

func TestIntrospectionMetricsLastLogin(t *testing.T) {
	e := newEnv(t, atoti.DefaultConfig)
	if !userByID(t, e, e.aliceID).LastLoginAt.IsZero() {
		t.Fatal("alice has a last login before any")
	}
	e.Clock.Advance(time.Hour) // so the recorded time is the engine clock's
	loginAt := e.Clock.Now()
	tok := e.login(t, "alice", alicePwd)

	t.Run("introspection", func(t *testing.T) {
		claims, _ := e.VerifyWithJWKS(tok)
		m := e.introspect(t, tok)
		// Introspection reports the user's id as sub and the name as
		// username, whatever the Atoti token's own sub (the username).
		if m["active"] != true || m["sub"] != e.aliceID || m["username"] != "alice" || m["iss"] != tokendtest.Issuer || m["jti"] != claims["jti"] ||
			m["exp"] != claims["exp"] || m["iat"] != claims["iat"] || m["token_type"] != "Bearer" || m["client_id"] != nil {
			t.Fatalf("introspection %v", m)
		}
	})
	t.Run("last_login_at", func(t *testing.T) {
		got := userByID(t, e, e.aliceID).LastLoginAt
		if d := got.Sub(loginAt); d < -time.Millisecond || d > 5*time.Second {
			t.Fatalf("last_login_at %v, want about %v", got, loginAt)
		}
		if !userByID(t, e, e.bobID).LastLoginAt.IsZero() {
			t.Fatal("bob's last login moved")
		}
	})
	t.Run("metrics", func(t *testing.T) {
		e.login(t, "alice", alicePwd)
		e.login(t, "bob", bobPwd)
		series := `tokend_tokens_issued_total{dialect="atoti",grant="password"}`
		if got, want := e.metric(t, series), series+" 3"; got != want {
			t.Fatalf("metrics line %q, want %q", got, want)
		}
		activity := `tokend_user_activity_total{dialect="atoti",kind="login"}`
		if got, want := e.metric(t, activity), activity+" 3"; got != want {
			t.Fatalf("metrics line %q, want %q", got, want)
		}
	})
}

// TestSeedExample replays seed 000: GET /activeviam/jwt/rest/v3/token
// with the response type the page declares (application/json), first as a
// Basic user, then with the returned token "in the Authorization header
// as: Authorization: Bearer <token>", which returns the existing token.
func TestSeedExample(t *testing.T) {
	e := newEnv(t, atoti.DefaultConfig)
	r := e.Do("GET", "/activeviam/jwt/rest/v3/token", "", "",
		"Accept", "application/json", "Authorization", basic("alice", alicePwd))
	tok := wantToken(t, r)
	r2 := e.Do("GET", "/activeviam/jwt/rest/v3/token", "", "",
		"Accept", "application/json", "Authorization", "Bearer "+tok)
	if got := wantToken(t, r2); got != tok {
		t.Fatal("the existing token was not returned")
	}
	wantUnauthorized(t, e.Do("GET", "/activeviam/jwt/rest/v3/token", "", "", "Accept", "*/*"))
}
