package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// MaxBodyBytes caps a request body.
const MaxBodyBytes = 64 << 10

// readObject reads a request body that must be one JSON object of at most
// MaxBodyBytes, sent as application/json (or a +json type), with no key
// given twice at any depth, and returns its members. An empty body is an
// empty object, so that a request whose fields are all optional needs no
// body at all.
func readObject(w http.ResponseWriter, r *http.Request) (*members, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, errTooLarge
		}
		return nil, tokend.Errorf(tokend.EINVALID, "could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return &members{m: map[string]json.RawMessage{}}, nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil, errNotJSON
	}
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, tokend.Errorf(tokend.EINVALID, "malformed JSON")
	}
	return &members{m: m}, nil
}

// checkJSON checks that b is one JSON object with no key given twice in
// any object it holds (encoding/json would keep the last one silently).
func checkJSON(b []byte) error {
	type frame struct {
		object  bool
		keys    map[string]bool
		wantKey bool
		path    string // of this value
		key     string // the member being read
		index   int    // of an array's next element
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []*frame
	started := false
	// valuePath names the value about to be read, and moves its parent on.
	valuePath := func() string {
		if len(stack) == 0 {
			return ""
		}
		top := stack[len(stack)-1]
		if top.object {
			top.wantKey = true
			return join(top.path, top.key)
		}
		top.index++
		return fmt.Sprintf("%s[%d]", top.path, top.index-1)
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return tokend.Errorf(tokend.EINVALID, "malformed JSON")
		}
		if started && len(stack) == 0 {
			return tokend.Errorf(tokend.EINVALID, "malformed JSON: data after the object")
		}
		if !started && tok != json.Delim('{') {
			return tokend.Errorf(tokend.EINVALID, "the body must be a JSON object")
		}
		started = true
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key := tok.(string)
			if top.keys[key] {
				field := join(top.path, key)
				return tokend.Invalid([]tokend.FieldError{{Field: field, Detail: "given more than once"}})
			}
			top.keys[key], top.key, top.wantKey = true, key, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, wantKey: true, path: valuePath()})
		case json.Delim('['):
			stack = append(stack, &frame{path: valuePath()})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			valuePath()
		}
	}
	if !started || len(stack) != 0 {
		return tokend.Errorf(tokend.EINVALID, "malformed JSON")
	}
	return nil
}

func join(path, key string) string {
	key = safeField(key)
	if path == "" {
		return key
	}
	return path + "." + key
}

// safeField keeps a caller's field name short and printable in an error.
func safeField(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return '?'
		}
		return r
	}, s)
}

// members are the members of a request's JSON object. Each getter reads
// one field, noting a wrong type instead of stopping, so that done can
// report every bad field at once, along with every field no getter asked
// for.
type members struct {
	m    map[string]json.RawMessage
	seen map[string]bool
	errs []tokend.FieldError
}

func (b *members) raw(name string) (json.RawMessage, bool) {
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	b.seen[name] = true
	v, ok := b.m[name]
	return v, ok
}

func (b *members) bad(name, detail string) {
	b.errs = append(b.errs, tokend.FieldError{Field: name, Detail: detail})
}

// get decodes field name into dst; false if it is absent or of the wrong
// type (then noted as kind).
func get[T any](b *members, name, kind string, dst *T) bool {
	v, ok := b.raw(name)
	if !ok {
		return false
	}
	if bytes.Equal(v, []byte("null")) || json.Unmarshal(v, dst) != nil {
		b.bad(name, "must be "+kind)
		return false
	}
	return true
}

func (b *members) str(name string) *string {
	var s string
	if get(b, name, "a string", &s) {
		return &s
	}
	return nil
}

func (b *members) boolean(name string) *bool {
	var v bool
	if get(b, name, "true or false", &v) {
		return &v
	}
	return nil
}

func (b *members) strs(name string) *[]string {
	var l []string
	if get(b, name, "an array of strings", &l) {
		if l == nil {
			l = []string{}
		}
		return &l
	}
	return nil
}

// seconds reads a duration given as a whole number of seconds.
func (b *members) seconds(name string) *time.Duration {
	var n json.Number
	if raw, ok := b.m[name]; ok && len(raw) > 0 && raw[0] == '"' {
		b.raw(name)
		b.bad(name, "must be a whole number of seconds")
		return nil
	}
	if !get(b, name, "a whole number of seconds", &n) {
		return nil
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || v > math.MaxInt64/int64(time.Second) || v < math.MinInt64/int64(time.Second) {
		b.bad(name, "must be a whole number of seconds")
		return nil
	}
	d := time.Duration(v) * time.Second
	return &d
}

// object reads a JSON object, keeping its numbers exact (json.Number).
func (b *members) object(name string) *map[string]any {
	v, ok := b.raw(name)
	if !ok {
		return nil
	}
	m, err := tokend.DecodeClaims(v)
	if err != nil || !bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) {
		b.bad(name, "must be a JSON object")
		return nil
	}
	if m == nil {
		m = map[string]any{}
	}
	return &m
}

// done returns the problems found so far, with one for every field that
// no getter asked for.
func (b *members) done() []tokend.FieldError {
	errs := b.errs
	for _, name := range slices.Sorted(maps.Keys(b.m)) {
		if !b.seen[name] {
			errs = append(errs, tokend.FieldError{Field: safeField(name), Detail: "unknown field"})
		}
	}
	return errs
}
