package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/token"
)

// discoveryDocument is the authorization server metadata (RFC 8414), also
// served as OpenID Connect discovery so that OIDC libraries find the JWKS.
func (s *Server) discoveryDocument() []byte {
	iss := strings.TrimSuffix(s.Engine.Config().Issuer, "/")
	doc := map[string]any{
		"issuer":                                        iss,
		"token_endpoint":                                iss + "/oauth2/token",
		"jwks_uri":                                      iss + "/.well-known/jwks.json",
		"revocation_endpoint":                           iss + "/oauth2/revoke",
		"introspection_endpoint":                        iss + "/oauth2/introspect",
		"userinfo_endpoint":                             iss + "/userinfo",
		"grant_types_supported":                         []string{tokend.GrantPassword, tokend.GrantClientCredentials, tokend.GrantRefreshToken},
		"response_types_supported":                      []string{},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"id_token_signing_alg_values_supported":         keys.Algorithms,
		"subject_types_supported":                       []string{"public"},
	}
	// A dialect that signs with a symmetric key says so (RFC 8414 §2 lets
	// a server add metadata): its tokens verify with a shared secret that
	// jwks_uri never holds, and tokend accepts them back only at that
	// dialect's own endpoints and at introspection (and revocation).
	if ks := s.Engine.Config().SymmetricKeys; len(ks) > 0 {
		signing := map[string]any{}
		for _, k := range ks {
			signing[k.Owner] = map[string]any{
				"alg":               k.Alg,
				"key":               "symmetric: shared with the dialect's verifiers, never published",
				"published_in_jwks": false,
				"accepted_at":       []string{k.Owner + " endpoints", "introspection_endpoint", "revocation_endpoint"},
			}
		}
		doc["tokend_symmetric_signing"] = signing
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("marshal discovery: %v", err))
	}
	return b
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(s.discovery)
}

// handleJWKS serves the key set (RFC 7517 §5): pre-serialized, with an
// ETag so that verifiers can revalidate cheaply.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	doc, etag := s.Engine.Ring().JWKS(s.Engine.Now())
	h := w.Header()
	h["Etag"] = []string{etag}
	h["Cache-Control"] = s.jwksCacheControl
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	w.Write(doc)
}

// handleUserinfo serves /userinfo: the identity behind a bearer access
// token (RFC 6750 §2.1 for the header, §3.1 for the errors).
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	raw, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		bearerError(w, "missing bearer token")
		return
	}
	c, err := s.Engine.CheckAccess(r.Context(), raw)
	if err != nil {
		if tokend.ErrorCode(err) == tokend.EINVALIDTOKEN {
			bearerError(w, "the access token is invalid, expired or revoked")
			return
		}
		s.oauthError(w, r, err)
		return
	}
	// The user comes from the engine, which reads sub by what it means
	// for this kind of token (an Atoti token's sub is a username, not an
	// id): sub here is always the user's id, or the client's.
	u, err := s.Engine.TokenUser(r.Context(), c)
	if err != nil {
		s.oauthError(w, r, err)
		return
	}
	out := map[string]any{"sub": c.Subject}
	if c.ClientID != "" {
		out["client_id"] = c.ClientID
	}
	if c.Subject != c.ClientID {
		if u == nil {
			bearerError(w, "the access token is invalid, expired or revoked")
			return
		}
		out["sub"] = u.ID
		out["preferred_username"] = u.Username
		if len(u.Roles) > 0 {
			out["roles"] = u.Roles
		}
		// The user's custom claims, never in place of one tokend sets.
		for k, v := range u.Claims {
			if _, set := out[k]; !set && !token.Reserved(k) {
				out[k] = v
			}
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// bearer extracts the token of an "Authorization: Bearer" header; the
// scheme is case-insensitive.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func bearerError(w http.ResponseWriter, desc string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="tokend", error="invalid_token", error_description=%q`, desc))
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": desc})
}
