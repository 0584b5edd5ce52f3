package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Errors Verify returns, each wrapped with the detail of the case; test
// them with errors.Is. Their messages never hold the token.
var (
	ErrMalformed   = errors.New("malformed token")
	ErrAlgorithm   = errors.New("signature algorithm not allowed")
	ErrUnknownKey  = errors.New("unknown signing key")
	ErrSignature   = errors.New("invalid signature")
	ErrType        = errors.New("wrong token type")
	ErrIssuer      = errors.New("wrong issuer")
	ErrAudience    = errors.New("token is not for this audience")
	ErrExpired     = errors.New("token expired")
	ErrNotYetValid = errors.New("token not yet valid")
	ErrRevoked     = errors.New("token revoked")
)

// MaxTokenBytes bounds the tokens Verify parses at all.
const MaxTokenBytes = 8192

// TypeAccess is the typ header of OAuth access tokens (RFC 9068 §2.1).
const TypeAccess = "at+jwt"

// Options configure a Verifier. Audience and Algorithms are required, and
// so is a choice about revocation: ClientID and ClientSecret to follow the
// issuer's revocation feed, or Offline to accept revoked tokens until they
// expire. Security choices are never left to a default.
type Options struct {
	// Audience is this service's audience: a token's aud must contain it.
	// (tokend's refresh JWTs carry another audience, so they never pass.)
	Audience string
	// Algorithms are the signature algorithms accepted, e.g. ES256. A
	// token signed with any other (none, HS256 with a public key as the
	// secret, ...) is refused before its signature is looked at.
	Algorithms []string
	// Types are the accepted typ headers, compared as RFC 7515 §4.1.9
	// says (case-insensitive, "application/" optional). Default: at+jwt,
	// tokend's OAuth access tokens; tokend's dialect tokens have "JWT".
	Types []string
	// Leeway tolerates clock skew when checking exp, nbf and iat.
	Leeway time.Duration

	// ClientID and ClientSecret authenticate to the revocation feed, as a
	// confidential client of the issuer.
	ClientID, ClientSecret string
	// Offline skips the revocation feed: a revoked token passes until it
	// expires. Set it only without ClientID.
	Offline bool
	// RevocationsURL is the feed's address (default: the issuer's
	// /oauth2/revocations).
	RevocationsURL string
	// FeedWait is how long one long poll of the feed waits for news
	// (default 30s).
	FeedWait time.Duration

	// KeyRefetchInterval bounds fetches caused by tokens naming a key the
	// cache lacks: at most one per interval, however many such tokens
	// come (default 30s). A key tokend announces before it signs is
	// cached before it is needed; this is for the rest.
	KeyRefetchInterval time.Duration
	// MaxKeyAge is the longest the key set goes without a refresh, whatever
	// its Cache-Control says (default 1h).
	MaxKeyAge time.Duration
	// CacheSize is how many verified tokens are remembered, so that a
	// token presented again (a client reuses its access token until it
	// expires) costs no signature check and no parsing: its times and
	// revocations are still checked each time, and it is checked afresh
	// once its key leaves the key set. Default 4096; negative: none.
	CacheSize int

	// HTTPClient fetches the discovery document, the keys and the feed
	// (default: a client of its own; requests carry their own timeouts).
	HTTPClient *http.Client
	// Logger reports fetch failures and recoveries (default: none).
	Logger *slog.Logger
	// Now is the clock token times are checked against (default time.Now).
	Now func() time.Time
}

// Claims are the claims of a verified token. Each Verify returns its own
// Claims, but the slices in it are shared and must not be changed.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	ExpiresAt time.Time
	NotBefore time.Time // zero if absent
	IssuedAt  time.Time
	ID        string // jti
	ClientID  string
	Scope     string // space-separated (RFC 6749 §3.3)
	SessionID string // sid
	Username  string // preferred_username
	Roles     []string

	raw  []byte
	refs subjects
}

// HasScope reports whether the token's scope includes s.
func (c *Claims) HasScope(s string) bool {
	for _, have := range strings.Fields(c.Scope) {
		if have == s {
			return true
		}
	}
	return false
}

// Decode unmarshals the token's whole claim set into v, for claims that
// Claims does not name (the dialects' claims, custom claims).
func (c *Claims) Decode(v any) error { return json.Unmarshal(c.raw, v) }

// Verifier checks tokens of one issuer. It is safe for concurrent use;
// Close stops its background work.
type Verifier struct {
	issuer string
	opts   Options
	algs   []jose.SignatureAlgorithm
	now    func() time.Time
	log    *slog.Logger

	keys    *keyCache
	revoked *revocations // nil when Offline
	feed    *feedClient
	cache   *tokenCache // nil when off

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New reads the issuer's metadata (RFC 8414) and key set and, unless
// Offline, the revocation feed's full set, then keeps both current in the
// background. It fails if any of them cannot be read, or if opts lack a
// required setting.
func New(ctx context.Context, issuerURL string, opts Options) (*Verifier, error) {
	if err := opts.validate(issuerURL); err != nil {
		return nil, err
	}
	opts.defaults(issuerURL)
	v := &Verifier{issuer: issuerURL, opts: opts, now: opts.Now, log: opts.Logger}
	for _, a := range opts.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	if opts.CacheSize > 0 {
		v.cache = &tokenCache{max: opts.CacheSize}
	}
	jwksURL, err := discover(ctx, opts.HTTPClient, issuerURL)
	if err != nil {
		return nil, err
	}
	v.keys = &keyCache{
		client: opts.HTTPClient, url: jwksURL, algs: opts.Algorithms, log: v.log,
		refetchEvery: opts.KeyRefetchInterval, maxAge: opts.MaxKeyAge,
	}
	if err := v.keys.start(ctx); err != nil {
		return nil, err
	}
	if !opts.Offline {
		v.revoked = newRevocations()
		v.feed = &feedClient{
			client: opts.HTTPClient, url: opts.RevocationsURL, id: opts.ClientID, secret: opts.ClientSecret,
			wait: opts.FeedWait, log: v.log, into: v.revoked, leeway: opts.Leeway, now: v.now,
		}
		if err := v.feed.load(ctx); err != nil {
			return nil, err
		}
	}
	bg, stop := context.WithCancel(context.Background())
	v.stop = stop
	v.wg.Add(1)
	go func() { defer v.wg.Done(); v.keys.run(bg) }()
	if v.feed != nil {
		v.wg.Add(1)
		go func() { defer v.wg.Done(); v.feed.run(bg) }()
	}
	return v, nil
}

// Status is what a Verifier last heard from the issuer, for health checks
// and metrics: a service that would rather refuse tokens than miss
// revocations for long can act on FeedContact.
type Status struct {
	KeysFetched time.Time // the last key set fetch that worked
	FeedContact time.Time // the last answer of the revocation feed (zero when Offline)
	FeedCursor  string
	Revocations int // entries held
}

// Status reports what v last heard from the issuer.
func (v *Verifier) Status() Status {
	var s Status
	v.keys.mu.Lock()
	s.KeysFetched = v.keys.lastGood
	v.keys.mu.Unlock()
	if v.feed != nil {
		v.feed.mu.Lock()
		s.FeedContact, s.FeedCursor = v.feed.contact, v.feed.cursor
		v.feed.mu.Unlock()
		s.Revocations = v.revoked.size()
	}
	return s
}

// Close stops the background refreshes; Verify keeps working on what was
// last read.
func (v *Verifier) Close() error {
	v.stop()
	v.wg.Wait()
	return nil
}

func (o *Options) validate(issuerURL string) error {
	var errs []error
	if issuerURL == "" {
		errs = append(errs, errors.New("the issuer URL is required"))
	}
	if o.Audience == "" {
		errs = append(errs, errors.New("Options.Audience is required"))
	}
	if len(o.Algorithms) == 0 {
		errs = append(errs, errors.New("Options.Algorithms is required (e.g. ES256)"))
	}
	for _, a := range o.Algorithms {
		if !slices.Contains(asymmetric, a) {
			errs = append(errs, fmt.Errorf("algorithm %q is not an asymmetric JWS algorithm (want one of %s)", a, strings.Join(asymmetric, ", ")))
		}
	}
	switch {
	case o.Offline && o.ClientID != "":
		errs = append(errs, errors.New("Options.Offline and Options.ClientID exclude each other"))
	case !o.Offline && (o.ClientID == "" || o.ClientSecret == ""):
		errs = append(errs, errors.New("set Options.ClientID and ClientSecret to follow the revocation feed, or Options.Offline to accept revoked tokens until they expire"))
	}
	if o.Leeway < 0 || o.FeedWait < 0 || o.KeyRefetchInterval < 0 || o.MaxKeyAge < 0 {
		errs = append(errs, errors.New("durations in Options must not be negative"))
	}
	if o.FeedWait > time.Minute {
		errs = append(errs, errors.New("Options.FeedWait must be at most a minute (the feed holds a request no longer)"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("verify: %w", errors.Join(errs...))
	}
	return nil
}

// asymmetric are the algorithms a verifier may accept: public-key ones
// only, since a verifier holds no secret.
var asymmetric = []string{"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

func (o *Options) defaults(issuerURL string) {
	if len(o.Types) == 0 {
		o.Types = []string{TypeAccess}
	}
	if o.RevocationsURL == "" {
		o.RevocationsURL = strings.TrimSuffix(issuerURL, "/") + "/oauth2/revocations"
	}
	if o.FeedWait == 0 {
		o.FeedWait = 30 * time.Second
	}
	if o.KeyRefetchInterval == 0 {
		o.KeyRefetchInterval = 30 * time.Second
	}
	if o.MaxKeyAge == 0 {
		o.MaxKeyAge = time.Hour
	}
	if o.CacheSize == 0 {
		o.CacheSize = 4096
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Verify checks raw, a compact JWS, and returns its claims: the algorithm
// (one of Options.Algorithms), the typ header, the key (by kid, from the
// issuer's key set), the signature, iss, aud, exp, nbf and iat (with
// Options.Leeway), and, unless Offline, that the token, its session, its
// user and its client are not revoked. ctx bounds the one fetch a token
// naming an unknown key may cause.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if raw == "" || len(raw) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: empty or over %d bytes", ErrMalformed, MaxTokenBytes)
	}
	if v.cache != nil {
		if c, ok := v.cache.get(raw, v.keys); ok {
			return c, v.checkLive(c)
		}
	}
	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return nil, ErrAlgorithm
		}
		return nil, ErrMalformed
	}
	if len(jws.Signatures) != 1 {
		return nil, ErrMalformed
	}
	h := jws.Signatures[0].Protected
	if _, crit := h.ExtraHeaders["crit"]; crit {
		return nil, fmt.Errorf("%w: critical header", ErrMalformed)
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !v.typeAllowed(typ) {
		return nil, ErrType
	}
	key := v.keys.lookup(h.KeyID)
	if key == nil && h.KeyID != "" {
		key = v.keys.refetchFor(ctx, h.KeyID)
	}
	if key == nil {
		return nil, ErrUnknownKey
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, fmt.Errorf("%w: the key is for another algorithm", ErrAlgorithm)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, ErrSignature
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	if err := v.checkClaims(c); err != nil {
		return nil, err
	}
	if err := v.checkLive(c); err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(raw, h.KeyID, key, c)
	}
	return c, nil
}

// checkLive checks what changes with time: exp, nbf, iat and revocations.
func (v *Verifier) checkLive(c *Claims) error {
	now, leeway := v.now(), v.opts.Leeway
	if !now.Before(c.ExpiresAt.Add(leeway)) {
		return ErrExpired
	}
	if !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore) {
		return ErrNotYetValid
	}
	if now.Add(leeway).Before(c.IssuedAt) {
		return fmt.Errorf("%w: issued in the future", ErrNotYetValid)
	}
	if v.revoked != nil {
		return v.revoked.check(c)
	}
	return nil
}

func (v *Verifier) typeAllowed(typ string) bool {
	typ = strings.ToLower(strings.TrimPrefix(strings.ToLower(typ), "application/"))
	for _, t := range v.opts.Types {
		if strings.EqualFold(strings.TrimPrefix(strings.ToLower(t), "application/"), typ) {
			return true
		}
	}
	return false
}

// checkClaims checks what never changes: iss, aud, and no refresh token.
func (v *Verifier) checkClaims(c *Claims) error {
	if c.Issuer != v.issuer {
		return ErrIssuer
	}
	if !slices.Contains(c.Audience, v.opts.Audience) {
		return ErrAudience
	}
	if c.refs.tokenType == "refresh" {
		return fmt.Errorf("%w: a refresh token", ErrType)
	}
	return nil
}

// wireClaims is the claim set as JSON holds it.
type wireClaims struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      audience        `json:"aud"`
	Exp      *numericDate    `json:"exp"`
	Nbf      *numericDate    `json:"nbf"`
	Iat      *numericDate    `json:"iat"`
	Jti      string          `json:"jti"`
	ClientID string          `json:"client_id"`
	Scope    string          `json:"scope"`
	Sid      string          `json:"sid"`
	Username string          `json:"preferred_username"`
	Roles    []string        `json:"roles"`
	Auth     json.RawMessage `json:"authorities"`
	Type     string          `json:"token_type"`
	UserID   string          `json:"user_id"`
	TaikiUID string          `json:"taiki_user_id"`
	AppID    string          `json:"client_app_id"`
}

// subjects are what the revocation feed can name a token by besides its
// jti and sid.
type subjects struct {
	users     []string // ids
	username  string   // set for Atoti-shaped tokens, whose sub is the username
	clients   []string
	tokenType string
}

func parseClaims(payload []byte) (*Claims, error) {
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrMalformed)
	}
	if w.Exp == nil || w.Jti == "" || w.Iss == "" {
		return nil, fmt.Errorf("%w: iss, exp and jti are required", ErrMalformed)
	}
	c := &Claims{
		Issuer: w.Iss, Subject: w.Sub, Audience: w.Aud, ExpiresAt: w.Exp.t, ID: w.Jti,
		ClientID: w.ClientID, Scope: w.Scope, SessionID: w.Sid, Username: w.Username, Roles: w.Roles,
		raw: payload,
	}
	if w.Nbf != nil {
		c.NotBefore = w.Nbf.t
	}
	if w.Iat != nil {
		c.IssuedAt = w.Iat.t
	}
	r := &c.refs
	r.tokenType = w.Type
	if len(w.Auth) > 0 && string(w.Auth) != "null" {
		r.username = w.Sub
	} else if w.Sub != "" {
		r.users = append(r.users, w.Sub)
	}
	for _, id := range []string{w.UserID, w.TaikiUID} {
		if id != "" && id != w.Sub {
			r.users = append(r.users, id)
		}
	}
	for _, id := range []string{w.ClientID, w.AppID} {
		if id != "" {
			r.clients = append(r.clients, id)
		}
	}
	return c, nil
}

// audience is aud: one string or an array of them (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// numericDate is a JWT time: whole seconds since the epoch. (RFC 7519
// allows fractions; tokend never writes them, so one is refused.)
type numericDate struct{ t time.Time }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	d.t = time.Unix(n, 0)
	return nil
}
