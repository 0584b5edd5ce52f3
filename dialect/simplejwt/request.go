package simplejwt

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/tokend/tokend/httpapi"
)

// Requests are read as Django REST framework reads them for a view whose
// parsers are its defaults (JSON, form, multipart; shared/spec/dialects.md:
// "Where the seed is silent"): an empty body is no data whatever its type,
// the media type picks the parser, and a body a parser cannot read is a
// 400 in DRF's words. Two choices are tokend's own: a key or parameter
// given twice is refused (one reading of each request), and a body is at
// most httpapi.MaxBodyBytes.

// Kinds of a field's value, as a DRF CharField sees them.
const (
	missing = iota
	null
	text  // a string, a form value, or a JSON number in Python's text
	other // a boolean, list, object or uploaded file
)

type field struct {
	kind int
	text string
}

// data is a request's fields.
type data map[string]field

// bodyError is a body that cannot be read: its status and DRF's detail.
type bodyError struct {
	status int
	detail string
}

// nonField is a body that was read but is no set of fields: DRF's
// non_field_errors message.
type nonField string

// accepted reports whether an Accept header lets DRF's default renderers
// (JSON, and the browsable API's HTML) answer; tokend answers JSON to
// either. An absent or empty header accepts anything; so does any range
// that matches application/json or text/html.
func accepted(h []string) bool {
	any := false
	for _, v := range h {
		for _, r := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(r, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
			if mt == "" {
				continue
			}
			any = true
			switch mt {
			case "*/*", "application/*", "application/json", "text/*", "text/html":
				return true
			}
		}
	}
	return !any
}

// readData reads a POST body into fields. It returns a *bodyError for a
// body that cannot be read, or a nonField for a JSON body that is not an
// object.
func readData(w http.ResponseWriter, r *http.Request) (data, any) {
	raw, err := httpapi.ReadBody(w, r)
	if err != nil {
		if httpapi.BodyTooLarge(err) {
			return nil, &bodyError{http.StatusRequestEntityTooLarge, msgTooLarge}
		}
		return nil, &bodyError{http.StatusBadRequest, "Could not read the request body."}
	}
	if len(raw) == 0 {
		return data{}, nil // DRF reads no data from an empty body, whatever its type
	}
	// A body without a Content-Type is text/plain (MIME's default, RFC 2045
	// §5.2), as Django's own server reads it.
	ct := r.Header.Get("Content-Type")
	if _, ok := r.Header["Content-Type"]; !ok {
		ct = "text/plain"
	}
	mt, params, _ := mime.ParseMediaType(ct)
	if mt == "" {
		mt, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(ct)), ";")
		mt = strings.TrimSpace(mt)
	}
	switch mt {
	case "application/json":
		return readJSON(raw)
	case "application/x-www-form-urlencoded":
		form, err := httpapi.DecodeForm(raw)
		if err != nil {
			return nil, formError("Form parse error", err)
		}
		d := data{}
		for k, v := range form {
			d[k] = field{kind: text, text: v}
		}
		return d, nil
	case "multipart/form-data":
		return readMultipart(raw, ct, params)
	}
	return nil, &bodyError{http.StatusUnsupportedMediaType, `Unsupported media type "` + ct + `" in request.`}
}

func formError(prefix string, err error) *bodyError {
	var dup *httpapi.DuplicateKeyError
	var esc url.EscapeError
	reason := "malformed body"
	switch {
	case errors.As(err, &dup):
		// One reading of each request (ours: Django would take the last value).
		reason = "duplicate parameter " + dup.Key
	case errors.As(err, &esc):
		reason = "invalid percent-encoding"
	}
	return &bodyError{http.StatusBadRequest, prefix + " - " + reason}
}

// readJSON reads a JSON body: an object's members become fields; any
// other value is DRF's "Expected a dictionary" (or, for null, "No data
// provided").
func readJSON(raw []byte) (data, any) {
	if reason := pyJSONError(raw); reason != "" {
		return nil, &bodyError{http.StatusBadRequest, msgParse + " - " + reason}
	}
	v, err := httpapi.DecodeJSON(raw)
	if err != nil {
		reason := "invalid JSON (nested too deep)"
		if dup, ok := errors.AsType[*httpapi.DuplicateKeyError](err); ok {
			// One reading of each request (ours: Python keeps the last value).
			reason = "duplicate key " + dup.Path
		}
		return nil, &bodyError{http.StatusBadRequest, msgParse + " - " + reason}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return nil, nonField("No data provided")
		}
		return nil, nonField("Invalid data. Expected a dictionary, but got " + pyTypeName(v, string(bytes.TrimSpace(raw))) + ".")
	}
	d := make(data, len(obj))
	for k, v := range obj {
		switch v := v.(type) {
		case nil:
			d[k] = field{kind: null}
		case string:
			d[k] = field{kind: text, text: v}
		case json.Number:
			d[k] = field{kind: text, text: pyNumber(v.String())} // DRF's CharField: str(number)
		default:
			d[k] = field{kind: other}
		}
	}
	return d, nil
}

// validBoundary is the boundary Django accepts (up to 70 characters by
// RFC 2046, up to 200 by Python's cgi module).
var validBoundary = regexp.MustCompile(`^[ -~]{0,200}[!-~]$`)

// readMultipart reads a multipart/form-data body (a browser's FormData):
// each named part is a field, a file part a value no CharField takes.
// Parts without a name are skipped, as Django skips them.
func readMultipart(raw []byte, ct string, params map[string]string) (data, any) {
	const prefix = "Multipart form parse error"
	boundary, ok := params["boundary"]
	if !ok {
		// mime.ParseMediaType refuses some headers Django reads: take the
		// parameter as Django finds it.
		for _, p := range strings.Split(ct, ";")[1:] {
			if k, v, found := strings.Cut(strings.TrimSpace(p), "="); found && strings.EqualFold(k, "boundary") {
				boundary, ok = strings.Trim(v, `"`), true
			}
		}
	}
	switch {
	case !ok:
		return nil, &bodyError{http.StatusBadRequest, prefix + " - Invalid boundary in multipart: None"}
	case !validBoundary.MatchString(boundary):
		return nil, &bodyError{http.StatusBadRequest, prefix + " - Invalid boundary in multipart: " + boundary}
	}
	mr := multipart.NewReader(bytes.NewReader(raw), boundary)
	d := data{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return d, nil // no (more) parts: Django reads what it found
		}
		if err != nil {
			return nil, &bodyError{http.StatusBadRequest, prefix + " - malformed body"}
		}
		name := part.FormName()
		if name == "" {
			continue
		}
		if _, dup := d[name]; dup {
			return nil, &bodyError{http.StatusBadRequest, prefix + " - duplicate parameter " + printable(name)}
		}
		if part.FileName() != "" {
			d[name] = field{kind: other}
			continue
		}
		v, err := io.ReadAll(part)
		if err != nil {
			return nil, &bodyError{http.StatusBadRequest, prefix + " - malformed body"}
		}
		d[name] = field{kind: text, text: strings.ToValidUTF8(string(v), "\ufffd")}
	}
}

// printable cuts a client-given name to a printable, bounded form before
// it is shown back.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '\ufffd' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "")
	}
	return s
}
