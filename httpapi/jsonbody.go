package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// One reading of each request: a JSON object that names a key twice means
// different things to different parsers (encoding/json keeps the last
// value, others the first or both), so tokend refuses it, as it refuses a
// form parameter given twice (RFC 6749 §3.2), at every nesting level.
// DecodeJSON is the one JSON reader of every request body, at the standard
// endpoints and in every dialect.

// ErrJSONSyntax is DecodeJSON's error for a body that is not exactly one
// JSON value: a syntax error, trailing data, or nesting deeper than
// maxJSONDepth.
var ErrJSONSyntax = errors.New("malformed JSON")

// DuplicateKeyError is DecodeJSON's error for an object that names a key
// twice. Key and Path are cut to a printable, bounded form, so they may be
// shown to the client.
type DuplicateKeyError struct {
	Key string // the key named twice
	// Path is where the second one is, as a JSONPath: $.grant_type,
	// $.meta.a, $.list[0]['odd key'] (for a form: the parameter's name).
	Path string
	// TopLevel is true when the key belongs to the outermost object.
	TopLevel bool
}

func (e *DuplicateKeyError) Error() string { return "duplicate JSON key " + e.Path }

// maxJSONDepth bounds the nesting of a body: no request of tokend needs
// more than one level, and the reader recurses once per level.
const maxJSONDepth = 64

// DecodeJSON reads raw as exactly one JSON value: objects become
// map[string]any, arrays []any, numbers json.Number, and strings, booleans
// and null their Go values. It fails with a *DuplicateKeyError when any
// object, at any depth, names a key twice (keys are compared after their
// escapes are decoded, so "a" and "\u0061" are the same key), and with
// ErrJSONSyntax for anything that is not one well-formed value.
func DecodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := readJSONValue(dec, "$", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrJSONSyntax // trailing data
	}
	return v, nil
}

// readJSONValue reads the value that starts at the decoder's next token;
// path is its JSONPath, for errors.
func readJSONValue(dec *json.Decoder, path string, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, ErrJSONSyntax
	}
	t, err := dec.Token()
	if err != nil {
		return nil, ErrJSONSyntax
	}
	d, ok := t.(json.Delim)
	if !ok {
		return t, nil // string, json.Number, bool or nil
	}
	switch d {
	case '{':
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, ErrJSONSyntax
			}
			k, ok := kt.(string)
			if !ok {
				return nil, ErrJSONSyntax
			}
			member := path + jsonPathMember(k)
			if _, dup := obj[k]; dup {
				return nil, &DuplicateKeyError{Key: safeName(k), Path: member, TopLevel: depth == 0}
			}
			if obj[k], err = readJSONValue(dec, member, depth+1); err != nil {
				return nil, err
			}
		}
		if _, err := dec.Token(); err != nil { // '}'
			return nil, ErrJSONSyntax
		}
		return obj, nil
	case '[':
		arr := []any{}
		for i := 0; dec.More(); i++ {
			v, err := readJSONValue(dec, path+"["+strconv.Itoa(i)+"]", depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.Token(); err != nil { // ']'
			return nil, ErrJSONSyntax
		}
		return arr, nil
	}
	return nil, ErrJSONSyntax // a closing delimiter where a value belongs
}

// jsonPathMember is the JSONPath step to member k: .k for a plain name,
// ['k'] for anything else, with k cut to a printable, bounded form.
func jsonPathMember(k string) string {
	k = safeName(k)
	plain := k != ""
	for i, c := range k {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return "." + k
	}
	return "['" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(k) + "']"
}

// DecodeForm reads raw as a form body (application/x-www-form-urlencoded)
// whose every parameter is given once: a parameter given twice is a
// *DuplicateKeyError (RFC 6749 §3.2: "Request and response parameters MUST
// NOT be included more than once"), with Path the parameter's name.
func DecodeForm(raw []byte) (map[string]string, error) {
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(form))
	for k, v := range form {
		if len(v) > 1 {
			return nil, &DuplicateKeyError{Key: safeName(k), Path: safeName(k), TopLevel: true}
		}
		out[k] = v[0]
	}
	return out, nil
}
