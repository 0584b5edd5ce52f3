package adminapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tokend/tokend"
)

// Lists come in pages of at most maxLimit items (defaultLimit unless the
// request says), in an order that concurrent inserts do not disturb: by
// id (UUIDv7, so new rows go to the end), or for the audit trail by seq,
// newest first. A page's next_cursor names where the next one starts.
const (
	defaultLimit = 50
	maxLimit     = 1000
)

// page is one page of a list response.
type page struct {
	Items      any    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// query reads a request's query parameters, noting every problem.
type query struct {
	r    *http.Request
	errs []tokend.FieldError
}

func newQuery(r *http.Request) *query { return &query{r: r} }

func (q *query) bad(name, detail string) {
	q.errs = append(q.errs, tokend.FieldError{Field: name, Detail: detail})
}

// get returns the parameter name ("" if absent); a parameter given twice
// is a problem.
func (q *query) get(name string) string {
	vs := q.r.URL.Query()[name]
	switch {
	case len(vs) > 1:
		q.bad(name, "given more than once")
		return ""
	case len(vs) == 0:
		return ""
	case !utf8.ValidString(vs[0]) || len(vs[0]) > 1024:
		q.bad(name, "must be UTF-8, at most 1024 bytes")
		return ""
	}
	return vs[0]
}

// limit reads `limit`: 1 to maxLimit, defaultLimit if absent.
func (q *query) limit() int {
	v := q.get("limit")
	if v == "" {
		return defaultLimit
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		q.bad("limit", "must be a whole number from 1 to "+strconv.Itoa(maxLimit))
		return defaultLimit
	}
	return n
}

// cursor reads `cursor`, which must be one that a page of this kind of
// list handed out; "" if absent.
func (q *query) cursor(kind string) string {
	v := q.get("cursor")
	if v == "" {
		return ""
	}
	pos, ok := decodeCursor(kind, v)
	if !ok {
		q.bad("cursor", "not a cursor of this list: pass next_cursor as it came")
	}
	return pos
}

// boolean reads a parameter that is true or false; nil if absent.
func (q *query) boolean(name string) *bool {
	switch q.get(name) {
	case "":
		return nil
	case "true":
		t := true
		return &t
	case "false":
		f := false
		return &f
	default:
		q.bad(name, "must be true or false")
		return nil
	}
}

func (q *query) err() error { return tokend.Invalid(q.errs) }

// Cursors are opaque to clients: the kind of list and the position (an id
// or a seq), base64url-encoded, so that a cursor of one list is refused
// by another rather than misread.
func encodeCursor(kind, pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + pos))
}

func decodeCursor(kind, s string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", false
	}
	pos, ok := strings.CutPrefix(string(b), kind+":")
	if !ok || pos == "" || len(pos) > 200 || !utf8.ValidString(pos) {
		return "", false
	}
	return pos, true
}

// trim cuts a list fetched with limit+1 items to limit and returns the
// position of the next page ("" on the last page).
func trim[T any](items []T, limit int, pos func(T) string) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, pos(items[limit-1])
}
