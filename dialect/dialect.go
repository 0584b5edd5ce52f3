// Package dialect holds what tokend's four vendor dialects share: their
// names, route registration with and without a trailing slash, and the
// reading of JSON request bodies into fields whose types are checked.
// Each dialect lives in a sub-package (atoti, simplejwt, ocm, taiki) and is
// a thin translation layer: it parses the vendor's request, calls the
// engine (package grant), and renders the vendor's answer and errors. It
// never checks a credential or touches a session itself.
package dialect

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/httpapi"
)

// Names of the dialects, as --dialects takes them.
const (
	Atoti     = "atoti"
	SimpleJWT = "simplejwt"
	OCM       = "ocm"
	Taiki     = "taiki"
)

// All lists every dialect, in the default --dialects order.
var All = []string{Atoti, SimpleJWT, OCM, Taiki}

// Handle registers h for method on path both without and with a trailing
// slash (clients of the vendors use either), and other for any other
// method on those paths (a dialect's own 405). Requests carry the dialect's
// name in their context, for the audit trail.
func Handle(mux httpapi.Mux, name, method, path string, h, other http.HandlerFunc) {
	path = strings.TrimSuffix(path, "/")
	tagged := func(next http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			next(w, r.WithContext(grant.WithDialect(r.Context(), name)))
		}
	}
	// Go's mux treats a pattern ending in "/" as a prefix; "{$}" pins it.
	for _, p := range []string{path, path + "/{$}"} {
		mux.HandleFunc(method+" "+p, tagged(h))
		mux.HandleFunc(p, other)
	}
}

// Errors of ReadJSON; a dialect renders each in its own format.
var (
	ErrTooLarge  = errors.New("request body too large")
	ErrMalformed = errors.New("malformed JSON body")
	ErrMediaType = errors.New("unsupported content type")
)

// Body is a request body decoded as a JSON object.
type Body map[string]any

// ReadJSON reads a JSON object body (at most httpapi.MaxBodyBytes). With
// allowForm, a form-encoded body is accepted too, as Django REST framework
// does. An empty body is an empty Body, whatever the content type: the
// dialect decides what it misses.
func ReadJSON(w http.ResponseWriter, r *http.Request, allowForm bool) (Body, error) {
	raw, err := httpapi.ReadBody(w, r)
	if err != nil {
		if httpapi.BodyTooLarge(err) {
			return nil, ErrTooLarge
		}
		return nil, ErrMalformed
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return Body{}, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
	case mt == "application/x-www-form-urlencoded" && allowForm:
		return readForm(raw)
	default:
		return nil, ErrMediaType
	}
	v, err := httpapi.DecodeJSON(raw)
	if dup, ok := errors.AsType[*httpapi.DuplicateKeyError](err); ok {
		return nil, &DuplicateError{Key: dup.Key, Path: dup.Path}
	}
	obj, ok := v.(map[string]any)
	if err != nil || !ok {
		return nil, ErrMalformed
	}
	return Body(obj), nil
}

// DuplicateError is ReadJSON's error for a body that names a key twice:
// in a JSON object at any depth, or as a form parameter. Such a body has
// no one reading, so it is refused; errors.Is(err, ErrMalformed) holds, so
// a dialect that has no answer of its own for it answers as for malformed
// JSON.
type DuplicateError struct {
	Key  string // the key, cut to a printable, bounded form
	Path string // its JSONPath, e.g. $.refreshToken or $.meta.a (a form: the name)
	Form bool   // the body was a form, not JSON
}

func (e *DuplicateError) Error() string { return "duplicate key " + e.Path + " in request body" }

// Is makes a DuplicateError a malformed body.
func (e *DuplicateError) Is(target error) bool { return target == ErrMalformed }

func readForm(raw []byte) (Body, error) {
	form, err := httpapi.DecodeForm(raw)
	if dup, ok := errors.AsType[*httpapi.DuplicateKeyError](err); ok {
		return nil, &DuplicateError{Key: dup.Key, Path: dup.Path, Form: true}
	}
	if err != nil {
		return nil, ErrMalformed
	}
	b := make(Body, len(form))
	for k, v := range form {
		b[k] = v
	}
	return b, nil
}

// Kinds of a field's value.
const (
	Missing = iota // absent
	Null           // JSON null
	String         // a string (maybe empty)
	Other          // a number, boolean, array or object
)

// Field returns a field's string value and what kind of value it was.
func (b Body) Field(name string) (string, int) {
	v, ok := b[name]
	switch {
	case !ok:
		return "", Missing
	case v == nil:
		return "", Null
	}
	if s, ok := v.(string); ok {
		return s, String
	}
	return "", Other
}

// Bearer extracts the credentials of an Authorization header whose scheme
// is one of schemes (case-insensitive).
func Bearer(h string, schemes ...string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return "", false
	}
	for _, s := range schemes {
		if strings.EqualFold(scheme, s) {
			tok = strings.TrimSpace(tok)
			return tok, tok != ""
		}
	}
	return "", false
}

// WriteJSON writes v as the JSON body with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
