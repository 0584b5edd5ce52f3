package httpapi_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/tokendtest"
)

// TestOpenAPIServed fetches /openapi.json: the embedded document, a valid
// OpenAPI 3.1 description, with an ETag that revalidates to 304 and a
// Cache-Control like the discovery document's.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/openapi.json", "", "", "")
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	if !bytes.Equal(r.Body, httpapi.OpenAPI()) {
		t.Fatal("the document served is not the embedded one")
	}
	var doc struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" || doc.Paths["/openapi.json"] == nil || doc.Paths["/oauth2/token"] == nil {
		t.Fatalf("openapi %q, %d paths", doc.OpenAPI, len(doc.Paths))
	}
	if _, err := tokendtest.LoadContract(); err != nil {
		t.Fatalf("the document does not validate: %v", err)
	}
	etag := r.Header.Get("ETag")
	if len(etag) < 3 || etag[0] != '"' || r.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, r.Header.Get("Cache-Control"))
	}
	again := e.do("GET", "/openapi.json", "", "", "", "If-None-Match", etag)
	if again.Status != 304 || len(again.Body) != 0 || again.Header.Get("ETag") != etag {
		t.Fatalf("revalidation: %d, %d bytes, ETag %q", again.Status, len(again.Body), again.Header.Get("ETag"))
	}
	if stale := e.do("GET", "/openapi.json", "", "", "", "If-None-Match", `"other"`); stale.Status != 200 {
		t.Fatalf("a stale ETag got %d", stale.Status)
	}
	post := e.do("POST", "/openapi.json", "application/json", "{}", "")
	if post.Status != 405 || post.Header.Get("Allow") != "GET" {
		t.Fatalf("POST /openapi.json: %d, Allow %q", post.Status, post.Header.Get("Allow"))
	}
}
