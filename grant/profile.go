package grant

import (
	"fmt"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/token"
)

// DialectOAuth names the standard OAuth endpoints in metrics, sessions and logs.
const DialectOAuth = "oauth"

// Profile says how one front end (the OAuth endpoints or a dialect) wants
// its tokens: algorithm, lifetimes, typ header and extra claims. The engine
// decides whether a token may be issued; the profile only shapes it.
type Profile struct {
	Dialect string
	// Alg signs the profile's tokens; empty means the engine's default.
	// HS256, HS384 or HS512 sign with the dialect's symmetric key
	// (Config.SymmetricKeys), which then also verifies the tokens
	// presented at the dialect's endpoints (symmetric.go).
	Alg string
	// Type is the JWS typ header of access tokens (token.TypeAccess by default).
	Type string
	// AccessTTL and RefreshTTL override the engine's lifetimes when set. A
	// client app's own AccessTTL wins over both.
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// Rotate turns refresh-token rotation on.
	Rotate bool
	// NoSession issues an access token alone at login, with no session
	// and no refresh token.
	NoSession bool
	// RefreshJWT issues refresh tokens as signed JWTs (token_type
	// "refresh", carrying the session id and counter) instead of opaque
	// strings, for dialects whose clients expect a JWT.
	RefreshJWT bool
	// Decorate adds the front end's claims to an access token. u is nil
	// for a client's own token.
	Decorate func(c *token.Claims, u *tokend.User, client *tokend.ClientApp)
	// ClaimNames renames dialect claims on the wire (simplejwt's
	// USER_ID_CLAIM and TOKEN_TYPE_CLAIM); tokens presented at the front
	// end's endpoints are read back with the same names.
	ClaimNames token.ClaimNames
}

// OAuth is the profile of the standard endpoints (RFC 9068 access tokens).
var OAuth = &Profile{Dialect: DialectOAuth, Type: token.TypeAccess, Rotate: true}

func (e *Engine) alg(p *Profile) string {
	if p.Alg != "" {
		return p.Alg
	}
	return e.cfg.Alg
}

func (e *Engine) accessTTL(p *Profile, client *tokend.ClientApp) time.Duration {
	switch {
	case client != nil && client.AccessTTL > 0:
		return client.AccessTTL
	case p.AccessTTL > 0:
		return p.AccessTTL
	default:
		return e.cfg.AccessTTL
	}
}

func (e *Engine) refreshTTL(p *Profile) time.Duration {
	if p.RefreshTTL > 0 {
		return p.RefreshTTL
	}
	return e.cfg.RefreshTTL
}

// Issued is what a grant hands back.
type Issued struct {
	AccessToken string
	Claims      *token.Claims
	ExpiresIn   time.Duration
	// RefreshToken is empty when the grant issues none.
	RefreshToken string
	Scope        string
	User         *tokend.User      // nil for client_credentials
	Client       *tokend.ClientApp // nil for a dialect login without a client
	Session      *tokend.Session   // nil without a session
}

// mint signs an access token for user u (nil: the client itself) at client.
func (e *Engine) mint(p *Profile, u *tokend.User, client *tokend.ClientApp, scope, sid string) (string, *token.Claims, time.Duration, error) {
	now := e.pastChangeSecond(u, e.now()) // users.go
	ttl := e.accessTTL(p, client)
	c := &token.Claims{
		Issuer:    e.cfg.Issuer,
		Audience:  []string{e.cfg.Audience},
		IssuedAt:  now.Unix(),
		ExpiresAt: now.Add(ttl).Unix(),
		ID:        token.NewID(),
		Scope:     scope,
		SessionID: sid,
	}
	if client != nil {
		c.ClientID = client.ID
	}
	if u != nil {
		c.Subject = u.ID
		c.Username = u.Username
		c.Roles = u.Roles
		// A user's custom claims, in every kind of access token (never
		// over a claim tokend sets: token.Claims.MarshalJSON).
		c.Extra = u.Claims
	} else if client != nil {
		c.Subject = client.ID
	}
	if p.Decorate != nil {
		p.Decorate(c, u, client)
	}
	typ := p.Type
	if typ == "" {
		typ = token.TypeAccess
	}
	raw, err := e.sign(p, typ, c)
	if err != nil {
		return "", nil, 0, err
	}
	return raw, c, ttl, nil
}

// sign signs c for p: with p's dialect's symmetric key when p's algorithm
// is an HMAC one, else with the ring's current key of the algorithm.
func (e *Engine) sign(p *Profile, typ string, c *token.Claims) (string, error) {
	alg := e.alg(p)
	if keys.IsSymmetric(alg) {
		k := e.symmetric(p.Dialect)
		if k == nil || k.Alg != alg {
			return "", fmt.Errorf("sign %s token: no %s key configured for %s", p.Dialect, alg, p.Dialect)
		}
		return token.SignNamed(k, typ, c, p.ClaimNames)
	}
	k, err := e.Ring().Signing(alg, e.now())
	if err != nil {
		return "", err
	}
	return token.SignNamed(k, typ, c, p.ClaimNames)
}

// issueRefresh returns the refresh token of generation counter of session
// s, in the profile's form.
func (e *Engine) issueRefresh(p *Profile, s *tokend.Session, u *tokend.User) (string, error) {
	if !p.RefreshJWT {
		return e.refreshToken(s.ID, s.Counter), nil
	}
	ctr := s.Counter
	c := &token.Claims{
		Issuer: e.cfg.Issuer,
		// Not the access audience: an access-token check refuses it.
		Audience:  []string{RefreshAudience(e.cfg.Issuer)},
		Subject:   u.ID,
		IssuedAt:  e.now().Unix(),
		ExpiresAt: s.ExpiresAt.Unix(),
		ID:        token.NewID(),
		SessionID: s.ID,
		TokenType: "refresh",
		Counter:   &ctr,
	}
	if p.Decorate != nil {
		p.Decorate(c, u, nil)
		c.TokenType = "refresh" // whatever the decoration says of access tokens
		c.Audience = []string{RefreshAudience(e.cfg.Issuer)}
	}
	return e.sign(p, token.TypeJWT, c)
}
