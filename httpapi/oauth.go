package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// params are the parameters of an OAuth request body, and how the client
// authenticated.
type params struct {
	values   map[string]string
	clientID string
	secret   string
}

func (p *params) get(name string) string { return p.values[name] }

// ReadBody reads a request body of at most MaxBodyBytes. A larger body is
// an error that BodyTooLarge recognizes.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
}

// BodyTooLarge reports whether err came from a body over MaxBodyBytes.
func BodyTooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

var errTooLarge = &tokend.Error{Code: tokend.EINVALID, Message: "request body too large"}

// parseParams reads an OAuth request: a form body (RFC 6749 §4.3.2 and
// friends) or, as a convenience, a JSON object of strings. Parameters in
// the query string are ignored, a parameter given twice is an error (§3.2),
// and client credentials come from HTTP Basic or the body, never both (§2.3).
func parseParams(w http.ResponseWriter, r *http.Request) (*params, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	body, err := ReadBody(w, r)
	if err != nil {
		if BodyTooLarge(err) {
			return nil, errTooLarge
		}
		return nil, tokend.Errorf(tokend.EINVALID, "could not read request body")
	}
	p := &params{values: map[string]string{}}
	switch mt {
	case "application/x-www-form-urlencoded":
		form, err := DecodeForm(body)
		if dup, ok := errors.AsType[*DuplicateKeyError](err); ok {
			return nil, tokend.Errorf(tokend.EINVALID, "parameter %s given more than once", dup.Key)
		}
		if err != nil {
			return nil, tokend.Errorf(tokend.EINVALID, "malformed form body")
		}
		p.values = form
	case "application/json":
		v, err := DecodeJSON(body)
		if dup, ok := errors.AsType[*DuplicateKeyError](err); ok {
			// One reading of each request, as for a form (§3.2).
			if dup.TopLevel {
				return nil, tokend.Errorf(tokend.EINVALID, "parameter %s given more than once", dup.Key)
			}
			return nil, tokend.Errorf(tokend.EINVALID, "JSON key %s given more than once", dup.Path)
		}
		obj, ok := v.(map[string]any)
		if err != nil || !ok {
			return nil, tokend.Errorf(tokend.EINVALID, "malformed JSON body")
		}
		for k, v := range obj {
			switch v := v.(type) {
			case string:
				p.values[k] = v
			case nil:
			default:
				return nil, tokend.Errorf(tokend.EINVALID, "parameter %s must be a string", safeName(k))
			}
		}
	default:
		return nil, tokend.Errorf(tokend.EINVALID, "content type must be application/x-www-form-urlencoded or application/json")
	}
	if id, sec, ok, err := basicAuth(r); err != nil {
		return nil, err
	} else if ok {
		if _, has := p.values["client_secret"]; has {
			return nil, tokend.Errorf(tokend.EINVALID, "use one client authentication method, not two")
		}
		if bodyID, has := p.values["client_id"]; has && bodyID != id {
			return nil, tokend.Errorf(tokend.EINVALID, "client_id does not match the authenticated client")
		}
		p.clientID, p.secret = id, sec
	} else {
		p.clientID, p.secret = p.values["client_id"], p.values["client_secret"]
	}
	return p, nil
}

// basicAuth reads client credentials from an Authorization: Basic header,
// form-decoding both parts as RFC 6749 §2.3.1 requires.
func basicAuth(r *http.Request) (id, secret string, ok bool, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", "", false, nil
	}
	rawID, rawSecret, ok := r.BasicAuth()
	if !ok {
		return "", "", false, &tokend.Error{Code: tokend.EINVALIDCLIENT, Message: "malformed Authorization header"}
	}
	id, err1 := url.QueryUnescape(rawID)
	secret, err2 := url.QueryUnescape(rawSecret)
	if err1 != nil || err2 != nil {
		return "", "", false, &tokend.Error{Code: tokend.EINVALIDCLIENT, Message: "malformed Authorization header"}
	}
	return id, secret, true, nil
}

// safeName keeps a client-chosen parameter name short and printable in messages.
func safeName(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// oauthError writes err as RFC 6749 §5.2 describes. Internal errors are
// logged here, once, and shown as a generic server_error.
func (s *Server) oauthError(w http.ResponseWriter, r *http.Request, err error) {
	code := tokend.ErrorCode(err)
	status := http.StatusBadRequest
	oauthCode := code
	msg := tokend.ErrorMessage(err)
	switch code {
	case tokend.EINVALID:
		if err == errTooLarge {
			status = http.StatusRequestEntityTooLarge
		}
	case tokend.EINVALIDGRANT, tokend.EUNAUTHORIZEDCLIENT, tokend.EUNSUPPORTEDGRANT, tokend.EINVALIDSCOPE:
	case tokend.EINVALIDCLIENT:
		status = http.StatusUnauthorized
		// RFC 6749 §5.2: a client that tried Basic is told to use Basic.
		if h := r.Header.Get("Authorization"); len(h) >= 6 && strings.EqualFold(h[:6], "basic ") {
			w.Header().Set("WWW-Authenticate", `Basic realm="tokend", charset="UTF-8"`)
		}
	case tokend.EINVALIDTOKEN:
		status = http.StatusUnauthorized
	case tokend.EUNAVAILABLE:
		status, oauthCode = http.StatusServiceUnavailable, "temporarily_unavailable"
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
		s.Log.Debug("request refused: unavailable", "path", r.URL.Path, "err", err)
	case tokend.ETOOMANY:
		// DESIGN.md: a locked account is an invalid_grant with 429; an IP
		// over its failure limit is refused before its request is read.
		status, oauthCode = http.StatusTooManyRequests, "invalid_request"
		if tokend.ErrorField(err) == "username" {
			oauthCode = "invalid_grant"
		}
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
	default:
		status, oauthCode, msg = http.StatusInternalServerError, "server_error", "internal error"
		s.Log.Error("request failed", "path", r.URL.Path, "err", err)
	}
	s.Metrics.Failures.WithLabelValues(grant.DialectOAuth, oauthCode).Inc()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, map[string]string{"error": oauthCode, "error_description": msg})
}

// tokenResponse is RFC 6749 §5.1's successful response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// handleToken serves POST /oauth2/token (RFC 6749 §3.2).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(grant.WithDialect(r.Context(), grant.DialectOAuth))
	p, err := parseParams(w, r)
	if err != nil {
		s.oauthError(w, r, err)
		return
	}
	issued, err := s.token(r, p)
	if err != nil {
		s.oauthError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:  issued.AccessToken,
		TokenType:    "Bearer",
		ExpiresIn:    int64(issued.ExpiresIn.Seconds()),
		RefreshToken: issued.RefreshToken,
		Scope:        issued.Scope,
	})
}

func (s *Server) token(r *http.Request, p *params) (*grant.Issued, error) {
	ctx := r.Context()
	gt := p.get("grant_type")
	switch gt {
	case "":
		return nil, tokend.Errorf(tokend.EINVALID, "grant_type is required")
	case tokend.GrantPassword, tokend.GrantClientCredentials, tokend.GrantRefreshToken:
	default:
		return nil, tokend.Errorf(tokend.EUNSUPPORTEDGRANT, "unsupported grant_type")
	}
	if gt == tokend.GrantRefreshToken {
		ctx = grant.PresentingToken(ctx)
	}
	client, err := s.Engine.AuthenticateClient(ctx, p.clientID, p.secret, gt != tokend.GrantClientCredentials)
	if err != nil {
		return nil, err
	}
	scope := p.get("scope")
	switch gt {
	case tokend.GrantPassword:
		username, password := p.get("username"), p.get("password")
		if username == "" || password == "" {
			return nil, tokend.Errorf(tokend.EINVALID, "username and password are required")
		}
		return s.Engine.Password(ctx, grant.OAuth, client, username, password, scope)
	case tokend.GrantClientCredentials:
		return s.Engine.ClientCredentials(ctx, grant.OAuth, client, scope)
	default:
		rt := p.get("refresh_token")
		if rt == "" {
			return nil, tokend.Errorf(tokend.EINVALID, "refresh_token is required")
		}
		return s.Engine.Refresh(ctx, grant.OAuth, client, rt, scope)
	}
}

// handleRevoke serves POST /oauth2/revoke (RFC 7009). Unknown, invalid and
// expired tokens get 200 like any other (§2.2).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(grant.WithDialect(r.Context(), grant.DialectOAuth))
	client, tok, ok := s.tokenRequest(w, r, true)
	if !ok {
		return
	}
	if err := s.Engine.Revoke(r.Context(), client, tok); err != nil {
		s.oauthError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// tokenRequest reads a request about a token (revocation, introspection):
// the client's credentials and the token parameter. It answers the request
// itself when it returns ok=false.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request, allowPublic bool) (*tokend.ClientApp, string, bool) {
	p, err := parseParams(w, r)
	if err != nil {
		s.oauthError(w, r, err)
		return nil, "", false
	}
	client, err := s.Engine.AuthenticateClient(grant.PresentingToken(r.Context()), p.clientID, p.secret, allowPublic)
	if err != nil {
		s.oauthError(w, r, err)
		return nil, "", false
	}
	tok := p.get("token")
	if tok == "" {
		s.oauthError(w, r, tokend.Errorf(tokend.EINVALID, "token is required"))
		return nil, "", false
	}
	return client, tok, true
}

// handleIntrospect serves POST /oauth2/introspect (RFC 7662). The caller
// must authenticate as a confidential client; anything that is not an
// active token gets {"active": false} and nothing else (§2.2).
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	client, tok, ok := s.tokenRequest(w, r, false)
	if !ok {
		return
	}
	in, err := s.Engine.Introspect(r.Context(), client, tok)
	if err != nil {
		s.oauthError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if in == nil {
		writeJSON(w, http.StatusOK, map[string]bool{"active": false})
		return
	}
	c := in.Claims
	// sub is the user's id (the client's for its own token) whatever the
	// token kind's own sub claim holds: an Atoti token's is a username.
	sub, username := c.Subject, c.Username
	if in.User != nil {
		sub, username = in.User.ID, in.User.Username
	}
	out := map[string]any{
		"active":    true,
		"token_use": in.TokenType,
		"iss":       c.Issuer,
		"sub":       sub,
		"exp":       c.ExpiresAt,
		"iat":       c.IssuedAt,
	}
	if in.TokenType == "access_token" {
		out["token_type"] = "Bearer"
		out["jti"] = c.ID
		if len(c.Audience) > 0 {
			out["aud"] = c.Audience
		}
	}
	for k, v := range map[string]string{"client_id": c.ClientID, "scope": c.Scope, "username": username, "sid": c.SessionID} {
		if v != "" {
			out[k] = v
		}
	}
	writeJSON(w, http.StatusOK, out)
}
