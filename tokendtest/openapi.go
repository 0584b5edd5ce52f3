package tokendtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/tokend/tokend/httpapi"
)

// Contract is tokend's OpenAPI document (httpapi.OpenAPI), loaded to check
// HTTP exchanges against it. Every test server and client of this package
// checks each request and response with it, so that the document cannot
// drift from what the server does.
//
// Rules beyond what kin-openapi checks (see Check):
//   - a status the operation does not list is a violation;
//   - a response the document gives no content must have an empty body;
//   - a path the document does not list must answer 404, and a method it
//     does not list for a path must answer 405 (with an Allow header naming
//     exactly the document's methods), 404 (a dialect switched off), or
//     406 where the path's operations document one (content negotiation
//     before the method, as Django REST framework does);
//   - a request that got a 2xx answer must itself match the document (the
//     server accepted it, so the document must accept it too); requests
//     that were refused are not checked, as tests send bad input on purpose;
//   - net/http's own answers, given before any route runs, are skipped (see
//     netHTTPAnswer).
type Contract struct {
	doc    *openapi3.T
	routes []*docRoute // literal paths first, then templated ones
}

// docRoute is one path of the document.
type docRoute struct {
	path  string   // as written in the document
	segs  []string // path segments; "{...}" for a parameter
	item  *openapi3.PathItem
	fixed bool // no parameters
	// prefixed: the path is also served below prefixes that flags
	// configure (extension x-tokend-prefixes).
	prefixed bool
}

var (
	contractOnce sync.Once
	contract     *Contract
	contractErr  error
)

// LoadContract returns the contract, loaded and validated once per process.
func LoadContract() (*Contract, error) {
	contractOnce.Do(func() {
		// JSON Lines bodies (the admin API's import) are checked as text:
		// each line is a record the server checks, and rejects on its own.
		for _, mt := range []string{"application/x-ndjson", "application/jsonl"} {
			openapi3filter.RegisterBodyDecoder(mt, openapi3filter.PlainBodyDecoder)
		}
		contract, contractErr = loadContract(httpapi.OpenAPI())
	})
	return contract, contractErr
}

func loadContract(raw []byte) (*Contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate OpenAPI document: %w", err)
	}
	c := &Contract{doc: doc}
	for path, item := range doc.Paths.Map() {
		r := &docRoute{path: path, segs: strings.Split(path, "/"), item: item, fixed: !strings.Contains(path, "{")}
		_, r.prefixed = item.Extensions["x-tokend-prefixes"]
		c.routes = append(c.routes, r)
	}
	// OpenAPI: a literal path wins over a templated one that matches too.
	slices.SortFunc(c.routes, func(a, b *docRoute) int {
		if a.fixed != b.fixed {
			if a.fixed {
				return -1
			}
			return 1
		}
		return strings.Compare(a.path, b.path)
	})
	return c, nil
}

// match returns the parameters of path if r serves it.
func (r *docRoute) match(path string) (map[string]string, bool) {
	segs := strings.Split(path, "/")
	if len(segs) != len(r.segs) {
		return nil, false
	}
	params := map[string]string{}
	for i, s := range r.segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			if segs[i] == "" {
				return nil, false
			}
			params[s[1:len(s)-1]] = segs[i]
			continue
		}
		if s != segs[i] {
			return nil, false
		}
	}
	return params, true
}

// find returns the document's route for a request path: an exact match,
// or a route with x-tokend-prefixes that the path ends with, below a
// prefix of one or more segments.
func (c *Contract) find(path string) (*docRoute, map[string]string) {
	for _, r := range c.routes {
		if params, ok := r.match(path); ok {
			return r, params
		}
	}
	for _, r := range c.routes {
		if !r.prefixed || !strings.HasSuffix(path, r.path) {
			continue
		}
		if prefix := strings.TrimSuffix(path, r.path); len(prefix) > 1 && strings.HasPrefix(prefix, "/") {
			if params, ok := r.match(r.path); ok {
				return r, params
			}
		}
	}
	return nil, nil
}

// Exchange is one request and the response it got.
type Exchange struct {
	Request     *http.Request
	RequestBody []byte // what the server read of the request body
	// RequestBodyCut is set when RequestBody is incomplete; the request is
	// then not checked.
	RequestBodyCut bool
	Status         int
	Header         http.Header
	Body           []byte
}

// Check returns an error naming every way x departs from the document, or
// nil.
func (c *Contract) Check(x *Exchange) error {
	if netHTTPAnswer(x) {
		return nil
	}
	body, header, err := decoded(x)
	if err != nil {
		return c.fail(x, err)
	}
	path := x.Request.URL.Path
	r, params := c.find(path)
	if r == nil {
		return c.fail(x, c.notFound(x.Status, header, body, "the document has no path "+path))
	}
	method := x.Request.Method
	if method == http.MethodHead {
		method = http.MethodGet // net/http serves HEAD with the GET route
	}
	op := r.item.GetOperation(method)
	if op == nil {
		return c.fail(x, c.otherMethod(r, x.Status, header, body))
	}
	route := &routers.Route{Spec: c.doc, Path: r.path, PathItem: r.item, Method: method, Operation: op}
	var errs []error
	resp := op.Responses.Status(x.Status)
	switch {
	case resp == nil || resp.Value == nil:
		errs = append(errs, fmt.Errorf("status %d is not documented for %s %s", x.Status, method, r.path))
	case len(resp.Value.Content) == 0 && len(body) > 0:
		errs = append(errs, fmt.Errorf("status %d of %s %s is documented without a body, got %d bytes", x.Status, method, r.path, len(body)))
	case x.Request.Method == http.MethodHead || x.Status == http.StatusNotModified:
		// kin-openapi checks neither; the status is documented.
	default:
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: x.Request, PathParams: params, Route: route},
			Status:                 x.Status,
			Header:                 header,
			Body:                   io.NopCloser(bytes.NewReader(body)),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			errs = append(errs, fmt.Errorf("response: %w", err))
		}
	}
	if x.Status >= 200 && x.Status < 300 && !x.RequestBodyCut {
		if err := c.checkRequest(x, route, params); err != nil {
			errs = append(errs, fmt.Errorf("request accepted with %d but not valid by the document: %w", x.Status, err))
		}
	}
	if len(errs) > 0 {
		return c.fail(x, errors.Join(errs...))
	}
	return nil
}

// netHTTPAnswer reports whether x was answered by net/http itself rather
// than by a route: 431 for an oversized header block, or a 400 without a
// Content-Type for a request it could not read (plain HTTP on a TLS port,
// a malformed request line). tokend's routes always type their bodies.
func netHTTPAnswer(x *Exchange) bool {
	return x.Status == http.StatusRequestHeaderFieldsTooLarge ||
		(x.Status == http.StatusBadRequest && x.Header.Get("Content-Type") == "")
}

// checkRequest validates the request of x, on a copy whose body can be
// read. As the dialects read them (see the document's description), a body
// of only whitespace is no body, and an application/*+json type is JSON.
func (c *Contract) checkRequest(x *Exchange, route *routers.Route, params map[string]string) error {
	req := x.Request.Clone(context.Background())
	body := x.RequestBody
	if len(bytes.TrimSpace(body)) == 0 {
		body = nil
	}
	req.Body, req.GetBody = io.NopCloser(bytes.NewReader(body)), nil
	req.ContentLength = int64(len(body))
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err == nil && strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json") {
		req.Header.Set("Content-Type", "application/json")
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true, SkipSettingDefaults: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	return openapi3filter.ValidateRequest(context.Background(), in)
}

// notFound checks the answer to a path the document does not list: 404,
// with the catch-all's body (or a problem, below the admin API).
func (c *Contract) notFound(status int, header http.Header, body []byte, why string) error {
	if status != http.StatusNotFound {
		return fmt.Errorf("%s, yet the server answered %d (want 404)", why, status)
	}
	ct := header.Get("Content-Type")
	name := "NotFound"
	if strings.HasPrefix(ct, "application/problem+json") {
		name = "Problem"
	}
	return c.checkSchema(name, body)
}

// otherMethod checks the answer to a method the document does not list
// for a path: 405 with Allow naming the document's methods (HEAD aside,
// and OPTIONS unless the document lists it), 404, or the 406 that the
// path's operations document.
func (c *Contract) otherMethod(r *docRoute, status int, header http.Header, body []byte) error {
	var want []string
	for m := range r.item.Operations() {
		want = append(want, m)
	}
	slices.Sort(want)
	switch status {
	case http.StatusNotFound:
		return c.notFound(status, header, body, "")
	case http.StatusMethodNotAllowed:
	case http.StatusNotAcceptable:
		if err := c.notAcceptable(r, header, body); err != nil {
			return fmt.Errorf("%s serves only %v, yet the server answered 406: %w", r.path, want, err)
		}
		return nil
	default:
		return fmt.Errorf("%s serves only %v, yet the server answered %d (want 405 or 404)", r.path, want, status)
	}
	var got []string
	for _, m := range strings.Split(header.Get("Allow"), ",") {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" || m == http.MethodHead || (m == http.MethodOptions && !slices.Contains(want, m)) || slices.Contains(got, m) {
			continue
		}
		got = append(got, m)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("405 on %s: Allow %q, the document has %v", r.path, header.Get("Allow"), want)
	}
	return nil
}

// notAcceptable checks a 406 to a method r does not list: an operation of
// r must document 406, and the body must match that answer's JSON schema.
func (c *Contract) notAcceptable(r *docRoute, header http.Header, body []byte) error {
	ops := r.item.Operations()
	for _, m := range slices.Sorted(maps.Keys(ops)) {
		resp := ops[m].Responses.Status(http.StatusNotAcceptable)
		if resp == nil || resp.Value == nil {
			continue
		}
		mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
		media := resp.Value.Content.Get(mt)
		if media == nil || media.Schema == nil || media.Schema.Value == nil {
			return fmt.Errorf("Content-Type %q is not documented for the 406 of %s %s", header.Get("Content-Type"), m, r.path)
		}
		v, err := decodeJSON(body)
		if err != nil {
			return fmt.Errorf("body is not JSON: %w", err)
		}
		if err := c.validateJSON(media.Schema.Value, v); err != nil {
			return fmt.Errorf("body does not match the 406 of %s %s: %w", m, r.path, err)
		}
		return nil
	}
	return errors.New("no operation of the path documents 406 (want 405 or 404)")
}

// checkSchema validates a JSON body against a schema of the components.
func (c *Contract) checkSchema(name string, body []byte) error {
	ref := c.doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("no schema %s in the document", name)
	}
	v, err := decodeJSON(body)
	if err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	if err := c.validateJSON(ref.Value, v); err != nil {
		return fmt.Errorf("body does not match %s: %w", name, err)
	}
	return nil
}

// validateJSON validates a decoded response body against a schema, with
// the document's JSON Schema dialect (2020-12 for OpenAPI 3.1, as
// openapi3filter uses: without it, const and other 3.1 keywords are not
// checked).
func (c *Contract) validateJSON(schema *openapi3.Schema, v any) error {
	opts := []openapi3.SchemaValidationOption{openapi3.VisitAsResponse(), openapi3.MultiErrors()}
	if c.doc.IsOpenAPI31OrLater() {
		opts = append(opts, openapi3.EnableJSONSchema2020())
	}
	return c.doc.ValidateSchemaJSON(schema, v, opts...)
}

func decodeJSON(b []byte) (any, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// decoded returns the body and header of x as the client sees them after
// content decoding.
func decoded(x *Exchange) ([]byte, http.Header, error) {
	if !strings.EqualFold(x.Header.Get("Content-Encoding"), "gzip") {
		return x.Body, x.Header, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(x.Body))
	if err != nil {
		return nil, nil, fmt.Errorf("gzip body: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, nil, fmt.Errorf("gzip body: %w", err)
	}
	h := x.Header.Clone()
	h.Del("Content-Encoding")
	h.Del("Content-Length")
	return b, h, nil
}

func (c *Contract) fail(x *Exchange, err error) error {
	if err == nil {
		return nil
	}
	body := x.Body
	if len(body) > 400 {
		body = append(body[:400:400], "..."...)
	}
	return fmt.Errorf("OpenAPI contract: %s %s answered %d %q: %w\nbody: %s",
		x.Request.Method, x.Request.URL.RequestURI(), x.Status, x.Header.Get("Content-Type"), err, body)
}

// Coverage compares the routes a server registers (httpapi.Server.Patterns,
// net/http ServeMux patterns) with the document. undocumented lists the
// patterns the document lacks; unserved lists the document's operations
// ("METHOD /path") that no pattern serves. A pattern without a method is a
// path's answer to its other methods: its path must be in the document, or
// it must be a subtree ("/admin/v1/") that holds paths of the document.
// "/" is the server's answer to unknown paths. A pattern without a method
// also serves the OPTIONS operation the document may list for its path
// (net/http routes OPTIONS there when no pattern names it; the simplejwt
// dialect answers it so). Parameter names do not
// matter ("{id}" matches "{user_id}"), and "{$}" only pins a trailing slash.
func (c *Contract) Coverage(patterns []string) (undocumented, unserved []string) {
	doc := map[string]bool{} // "METHOD path" and "path", normalized
	for _, r := range c.routes {
		p := normPath(r.path)
		doc[p] = true
		for m := range r.item.Operations() {
			doc[m+" "+p] = true
		}
	}
	served := map[string]bool{}
	for _, pat := range patterns {
		method, path, ok := strings.Cut(pat, " ")
		if !ok {
			method, path = "", pat
		}
		p := normPath(strings.TrimSpace(path))
		switch {
		case method == "" && p == "/":
		case method == "" && doc[p]:
			if doc[http.MethodOptions+" "+p] {
				served[http.MethodOptions+" "+p] = true
			}
		case method == "" && strings.HasSuffix(p, "/") && c.holds(p):
		case method != "" && doc[method+" "+p]:
			served[method+" "+p] = true
		default:
			undocumented = append(undocumented, pat)
		}
	}
	for _, r := range c.routes {
		for m := range r.item.Operations() {
			if !served[m+" "+normPath(r.path)] {
				unserved = append(unserved, m+" "+r.path)
			}
		}
	}
	slices.Sort(unserved)
	return undocumented, unserved
}

// holds reports whether the document has a path below prefix.
func (c *Contract) holds(prefix string) bool {
	for _, r := range c.routes {
		if strings.HasPrefix(normPath(r.path), prefix) {
			return true
		}
	}
	return false
}

// normPath writes every path parameter as "{}" and drops a trailing
// "{$}", so that a ServeMux pattern and a document path compare.
func normPath(p string) string {
	p = strings.TrimSuffix(p, "{$}")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && !strings.HasSuffix(s, "...}") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}
