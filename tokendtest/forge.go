package tokendtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"
)

var b64 = base64.RawURLEncoding

// Forgery is a token that must be rejected wherever a token is accepted.
type Forgery struct {
	Name  string
	Token string
}

// Forger makes forged and broken tokens modelled on a genuine token of the
// env. Fetched counts requests to the URLs it puts in jku and x5u headers:
// tokend must never fetch them.
type Forger struct {
	Fetched *atomic.Int64
	e       *Env
	trap    string
}

// NewForger starts the trap server behind the jku and x5u URLs.
func (e *Env) NewForger() *Forger {
	f := &Forger{Fetched: &atomic.Int64{}, e: e}
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.Fetched.Add(1)
		w.WriteHeader(404)
	}))
	e.T.Cleanup(trap.Close)
	f.trap = trap.URL
	return f
}

// Sign makes a compact JWS of header and claims: ES256 with an
// *ecdsa.PrivateKey, HS256 with a []byte secret, and no signature at all
// for alg "none".
func Sign(header, claims map[string]any, key any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	var sig []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			panic(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	}
	return input + "." + b64.EncodeToString(sig)
}

// Decode returns the header and claims of a compact JWS, unverified.
func Decode(tok string) (header, claims map[string]any) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, nil
	}
	hb, _ := b64.DecodeString(parts[0])
	cb, _ := b64.DecodeString(parts[1])
	json.Unmarshal(hb, &header)
	json.Unmarshal(cb, &claims)
	return header, claims
}

func clone(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func (f *Forger) realKey() *ecdsa.PrivateKey {
	k, err := f.e.Engine.Ring().Signing("ES256", f.e.Clock.Now())
	if err != nil {
		f.e.T.Fatal(err)
	}
	priv, ok := k.Private.(*ecdsa.PrivateKey)
	if !ok {
		f.e.T.Fatal("the env's default key is not ES256")
	}
	return priv
}

// Forgeries returns broken variants of genuine, an ES256 token of this env.
func (f *Forger) Forgeries(genuine string) []Forgery {
	f.e.T.Helper()
	h, c := Decode(genuine)
	if h == nil || h["alg"] != "ES256" {
		f.e.T.Fatalf("Forgeries needs a genuine ES256 token, got header %v", h)
	}
	real := f.realKey()
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&real.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	jwksBody := f.e.Do("GET", "/.well-known/jwks.json", "", "").Body
	now := f.e.Clock.Now()
	point, _ := attacker.PublicKey.Bytes() // 0x04 | X | Y
	attackerJWK := map[string]any{
		"kty": "EC", "crv": "P-256",
		"x": b64.EncodeToString(point[1:33]), "y": b64.EncodeToString(point[33:65]),
	}
	parts := strings.Split(genuine, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	other := New(f.e.T, Options{})
	otherTok := Sign(clone(h, "kid", otherKid(other)), c, otherKey(other))

	return []Forgery{
		{"alg none", Sign(clone(h, "alg", "none"), c, nil)},
		{"alg none, no kid", Sign(map[string]any{"alg": "none"}, c, nil)},
		{"HS256 keyed with the public key PEM", Sign(clone(h, "alg", "HS256"), c, pubPEM)},
		{"HS256 keyed with the JWKS", Sign(clone(h, "alg", "HS256"), c, jwksBody)},
		{"unknown kid", Sign(clone(h, "kid", "no-such-key"), c, attacker)},
		{"empty kid", Sign(clone(h, "kid", ""), c, attacker)},
		{"no kid", Sign(clone(h, "kid", nil), c, attacker)},
		{"kid is a path", Sign(clone(h, "kid", "../../../../../etc/passwd"), c, attacker)},
		{"kid is SQL", Sign(clone(h, "kid", "' OR '1'='1' --"), c, attacker)},
		{"real kid, attacker's key", Sign(h, c, attacker)},
		{"jku header", Sign(clone(h, "kid", "attacker", "jku", f.trap+"/jwks.json"), c, attacker)},
		{"x5u header", Sign(clone(h, "kid", "attacker", "x5u", f.trap+"/cert.pem"), c, attacker)},
		{"embedded jwk", Sign(clone(h, "kid", "attacker", "jwk", attackerJWK), c, attacker)},
		{"embedded jwk, real kid", Sign(clone(h, "jwk", attackerJWK), c, attacker)},
		{"crit header", Sign(clone(h, "crit", []string{"exp"}), c, real)},
		{"expired", Sign(h, clone(c, "exp", now.Add(-time.Minute).Unix(), "iat", now.Add(-time.Hour).Unix()), real)},
		{"no exp", Sign(h, clone(c, "exp", nil), real)},
		{"not yet valid", Sign(h, clone(c, "nbf", now.Add(time.Hour).Unix()), real)},
		{"issued in the future", Sign(h, clone(c, "iat", now.Add(time.Hour).Unix()), real)},
		{"wrong iss", Sign(h, clone(c, "iss", "https://evil.example"), real)},
		{"wrong aud", Sign(h, clone(c, "aud", "https://other.example"), real)},
		{"no jti", Sign(h, clone(c, "jti", nil), real)},
		{"float exp", Sign(h, clone(c, "exp", float64(now.Add(time.Hour).Unix())+0.5), real)},
		{"tampered payload", parts[0] + "." + flip(parts[1], 10) + "." + parts[2]},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2], 5)},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(Sign(h, clone(c, "jti", "x"), real), ".")[2]},
		{"token of another install", otherTok},
		{"oversized", parts[0] + "." + strings.Repeat("A", 10000) + "." + parts[2]},
		{"non-base64 parts", "eyJ!!!.$$$.###"},
		{"two parts", parts[0] + "." + parts[1]},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`},
		{"garbage", "not-a-token"},
	}
}

func otherKid(o *Env) string {
	k, _ := o.Engine.Ring().Signing("ES256", o.Clock.Now())
	return k.ID
}

func otherKey(o *Env) *ecdsa.PrivateKey {
	k, _ := o.Engine.Ring().Signing("ES256", o.Clock.Now())
	return k.Private.(*ecdsa.PrivateKey)
}
