package httpapi

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// openapiDocument describes every route tokend serves (OpenAPI 3.1): the
// standard endpoints, the admin API and the default paths of the four
// dialects. The tests check every response they get against it and the
// routes it lists against Patterns, so it cannot drift from the server.
//
//go:embed openapi.json
var openapiDocument []byte

// OpenAPI returns a copy of the OpenAPI document served at /openapi.json.
func OpenAPI() []byte {
	return append([]byte(nil), openapiDocument...)
}

func openapiETag() string {
	sum := sha256.Sum256(openapiDocument)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// handleOpenAPI serves the OpenAPI document, with an ETag so that tools
// can revalidate cheaply; it changes only with the binary.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("ETag", s.openapiETag)
	h.Set("Cache-Control", "public, max-age=3600")
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, s.openapiETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(openapiDocument)))
	w.Write(openapiDocument)
}
