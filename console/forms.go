package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tokend/tokend"
)

// Reading the console's forms into what grant.Manager takes. What a form
// cannot even express (JSON that does not parse, a duration that is no
// number) is reported as a field error like the engine's own.

// words splits a list typed as words separated by spaces or commas.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// claimsField reads a JSON object of custom claims; empty is none.
func claimsField(s string) (map[string]any, []tokend.FieldError) {
	s = strings.TrimSpace(s)
	if s == "" {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || dec.More() || m == nil {
		return nil, []tokend.FieldError{{Field: "claims", Detail: `must be a JSON object, such as {"team": "blue"}`}}
	}
	return m, nil
}

// claimsText shows custom claims for editing.
func claimsText(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

// durationField reads a duration typed as seconds ("3600") or as Go
// writes durations ("1h30m"); empty is zero.
func durationField(name, s string) (time.Duration, []tokend.FieldError) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > -1<<33 && n < 1<<33 {
		// Out of range or negative: the engine says what is allowed.
		return time.Duration(n) * time.Second, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	return 0, []tokend.FieldError{{Field: name, Detail: "must be a number of seconds, or a duration such as 90s, 15m or 1h"}}
}

// version reads the hidden version field of an edit form: the change is
// made only if the object is still at that version.
func version(r *http.Request) func(int64) bool {
	v, err := strconv.ParseInt(r.PostForm.Get("version"), 10, 64)
	if err != nil {
		return nil
	}
	return func(got int64) bool { return got == v }
}
