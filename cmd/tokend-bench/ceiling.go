package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/argon2"
)

// The ceiling is what a bare Go HTTP server does with the same requests on
// this machine: the standard library (and go-jose's parser to verify), no
// store, no sessions, no audit trail, no metrics; only what any server
// issuing the same tokens must do: read the form (or JSON) body, check the
// client's Basic credentials against a keyed hash, sign with crypto/ecdsa
// (ed25519, rsa) and write the compact JWS itself (jws.go). tokend's figure
// divided by it tells how much of the machine's capacity tokend's own work
// takes.

// ceiling is a running ceiling server for one scenario.
type ceiling struct {
	url   string
	srv   *http.Server
	token string // ceilIntrospect: a token it verifies, the size of tokend's
	// tokenBytes and describe say what it signs, for the report.
	tokenBytes map[string]int
	describe   string
	stop       func() // a ceiling in a child process
}

// startCeiling starts, on spec.Addr (127.0.0.1:0 if empty), a server that
// answers like tokend did in spec.Sample (with spec.Header), for spec.Kind.
func startCeiling(spec ceilingSpec) (*ceiling, error) {
	kind, sample, header := spec.Kind, spec.Sample, spec.Header
	check, err := newCredentialCheck(spec.Auth)
	if err != nil {
		return nil, err
	}
	c := &ceiling{tokenBytes: map[string]int{}}
	var h http.Handler
	switch kind {
	case ceilToken:
		tt, err := newTokenTemplate(sample)
		if err != nil {
			return nil, err
		}
		tt.check = check
		h = tt
		var desc []string
		for _, k := range slices.Sorted(maps.Keys(tt.jwts)) {
			m := tt.jwts[k]
			c.tokenBytes[k] = m.got
			desc = append(desc, fmt.Sprintf("%s %s %d bytes, tokend's %d", k, m.alg, m.got, m.size))
		}
		c.describe = "signs " + strings.Join(desc, "; ")
	case ceilIntrospect:
		tok, err := field(sample, "access_token")
		if err != nil {
			return nil, err
		}
		m, err := minterLike(tok)
		if err != nil {
			return nil, err
		}
		if c.token, err = m.mint(time.Hour); err != nil {
			return nil, err
		}
		h = &introspector{m: m, check: check}
		c.tokenBytes["token"] = m.got
		c.describe = fmt.Sprintf("verifies %s %d bytes, tokend's %d", m.alg, m.got, m.size)
	case ceilJWKS:
		body := bytes.Clone(sample)
		ct, cc := header.Get("Content-Type"), header.Get("Cache-Control")
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			if cc != "" {
				w.Header().Set("Cache-Control", cc)
			}
			w.Write(body)
		})
		c.describe = fmt.Sprintf("serves the same %d bytes", len(body))
	default:
		return nil, fmt.Errorf("no ceiling server for this scenario")
	}
	addr := spec.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	c.url = "http://" + ln.Addr().String()
	c.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go c.srv.Serve(ln)
	return c, nil
}

func (c *ceiling) close() {
	if c.stop != nil {
		c.stop()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.srv.Shutdown(ctx)
}

// tokenTemplate answers with tokend's sample answer in which every JWT is
// replaced by a freshly signed one of the same size, algorithm and key
// type, and every other refresh token by fresh random text of the same
// length.
type tokenTemplate struct {
	fields map[string]any
	jwts   map[string]*minter
	opaque map[string]int
	check  *credentialCheck // nil: requests carry no client credentials
}

func newTokenTemplate(sample []byte) (*tokenTemplate, error) {
	dec := json.NewDecoder(bytes.NewReader(sample))
	dec.UseNumber() // numbers are copied as tokend wrote them
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, fmt.Errorf("ceiling: tokend's answer is not a JSON object: %s", snippet(sample))
	}
	tt := &tokenTemplate{fields: fields, jwts: map[string]*minter{}, opaque: map[string]int{}}
	for k, v := range fields {
		s, ok := v.(string)
		if !ok {
			continue
		}
		if _, err := parseHeader(s); err == nil {
			m, err := minterLike(s)
			if err != nil {
				return nil, fmt.Errorf("ceiling: %s: %w", k, err)
			}
			tt.jwts[k] = m
		} else if strings.Contains(strings.ToLower(k), "refresh") {
			tt.opaque[k] = len(s)
		}
	}
	if len(tt.jwts) == 0 {
		return nil, fmt.Errorf("ceiling: no JWT in tokend's answer: %s", snippet(sample))
	}
	return tt, nil
}

func (tt *tokenTemplate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !readRequest(w, r) {
		return
	}
	if !tt.check.ok(r) {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	out := make(map[string]any, len(tt.fields))
	for k, v := range tt.fields {
		out[k] = v
	}
	for k, m := range tt.jwts {
		tok, err := m.mint(15 * time.Minute)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out[k] = tok
	}
	for k, n := range tt.opaque {
		out[k] = randomText(n)
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}

// randomText is n characters of base64url from fresh random bytes.
func randomText(n int) string {
	b := make([]byte, base64.RawURLEncoding.DecodedLen(n)+2)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// introspector answers RFC 7662 introspection of its own tokens: it parses
// the form, verifies the JWT's signature and expiry, and renders the claims.
type introspector struct {
	m     *minter
	check *credentialCheck
}

func (in *introspector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !readRequest(w, r) {
		return
	}
	if !in.check.ok(r) {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	c, err := in.m.verify(r.PostForm.Get("token"))
	if err != nil || time.Now().Unix() >= c.Exp {
		writeJSON(w, map[string]bool{"active": false})
		return
	}
	writeJSON(w, map[string]any{
		"active": true, "token_type": "Bearer", "iss": c.Iss, "sub": c.Sub,
		"exp": c.Exp, "iat": c.Iat, "jti": c.Jti, "client_id": c.Sub,
	})
}

// jwtHeader is the part of a JOSE header the ceiling copies.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// parseHeader reads the header of a compact JWS, which must have three
// parts.
func parseHeader(tok string) (*jwtHeader, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("not a compact JWS")
	}
	var h jwtHeader
	if err := json.Unmarshal(raw, &h); err != nil || h.Alg == "" {
		return nil, errors.New("not a compact JWS")
	}
	return &h, nil
}

// minter signs JWTs of one size with a key of its own, as a bare server
// would: the protected header encoded once, the compact form assembled in
// a pooled buffer and signed with the standard library (jws.go).
type minter struct {
	alg    string
	typ    string
	size   int // the size aimed at: tokend's token's
	got    int // the size it signs
	priv   crypto.Signer
	header string // base64url of the protected header
	public crypto.PublicKey
	pad    string
}

// ceilingClaims are fixed-width (iat and exp have ten digits until 2286,
// jti 32 hex), so that one padding gives every token the same size.
type ceilingClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
	Pad string `json:"pad,omitempty"`
}

// minterLike returns a minter for tokens like tok: same algorithm, a key
// of the same type (and, for RSA, the same size, read from the signature's
// length), the same typ header, a kid of the same form, and a payload
// padded so that the compact token has the same length.
func minterLike(tok string) (*minter, error) {
	h, err := parseHeader(tok)
	if err != nil {
		return nil, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(tok[strings.LastIndex(tok, ".")+1:])
	if err != nil {
		return nil, errors.New("not a compact JWS")
	}
	var priv crypto.Signer
	switch h.Alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		priv, err = rsa.GenerateKey(rand.Reader, max(2048, len(sig)*8))
	default:
		return nil, fmt.Errorf("no ceiling for %s tokens", h.Alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", h.Alg, err)
	}
	kid := ""
	if h.Kid != "" {
		tp, err := (&jose.JSONWebKey{Key: priv.Public()}).Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, err
		}
		kid = base64.RawURLEncoding.EncodeToString(tp)
	}
	header, err := json.Marshal(jwtHeader{Alg: h.Alg, Kid: kid, Typ: h.Typ})
	if err != nil {
		return nil, err
	}
	m := &minter{alg: h.Alg, typ: h.Typ, size: len(tok), priv: priv, public: priv.Public(),
		header: base64.RawURLEncoding.EncodeToString(header)}
	if err := m.fit(); err != nil {
		return nil, err
	}
	return m, nil
}

// fit chooses the padding that brings the token closest to m.size (base64
// cannot make every length: it may end one character off).
func (m *minter) fit() error {
	m.pad = ""
	bare, err := m.mint(time.Hour)
	if err != nil {
		return err
	}
	if m.got = len(bare); m.got >= m.size {
		return nil
	}
	// Base64 makes 4 characters of 3 bytes; the field costs ,"pad":"" too.
	guess := (m.size-len(bare))*3/4 - len(`,"pad":""`)
	best, bestDiff := "", m.size-len(bare)
	for n := max(guess-8, 1); n <= guess+8; n++ {
		m.pad = strings.Repeat("x", n)
		tok, err := m.mint(time.Hour)
		if err != nil {
			return err
		}
		if d := abs(len(tok) - m.size); d < bestDiff {
			best, bestDiff = m.pad, d
		}
	}
	m.pad = best
	tok, err := m.mint(time.Hour)
	m.got = len(tok)
	return err
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// mint signs a fresh token valid for ttl.
func (m *minter) mint(ttl time.Duration) (string, error) {
	var jti [16]byte
	rand.Read(jti[:])
	now := time.Now()
	payload, err := json.Marshal(ceilingClaims{
		Iss: "ceiling", Sub: "bench", Iat: now.Unix(), Exp: now.Add(ttl).Unix(),
		Jti: hex.EncodeToString(jti[:]), Pad: m.pad,
	})
	if err != nil {
		return "", err
	}
	return signCompact(m.alg, m.priv, m.header, payload)
}

// verify checks a token's algorithm and signature and returns its claims.
func (m *minter) verify(tok string) (*ceilingClaims, error) {
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(m.alg)})
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(m.public)
	if err != nil {
		return nil, err
	}
	var c ceilingClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// argonParams are argon2id's cost parameters.
type argonParams struct {
	memoryKiB uint32
	time      uint32
	threads   uint8
}

func (p argonParams) String() string {
	return fmt.Sprintf("m=%d KiB, t=%d, p=%d", p.memoryKiB, p.time, p.threads)
}

// argon2Load measures the raw argon2id hash rate: workers goroutines
// hashing back to back for the same warm-up and duration as a load run.
// One hash is what one password check costs tokend.
func argon2Load(ctx context.Context, p argonParams, lc loadConfig, workers int) *result {
	calls := make([]call, workers)
	for i := range calls {
		salt := make([]byte, 16)
		rand.Read(salt)
		password := []byte(randomText(24))
		calls[i] = func(context.Context) (int, error) {
			argon2.IDKey(password, salt, p.time, p.memoryKiB, p.threads, 32)
			return http.StatusOK, nil
		}
	}
	lc.concurrency = workers
	return runLoad(ctx, lc, calls)
}
