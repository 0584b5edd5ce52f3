package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/tokend/tokend/httpapi"
)

// FuzzDecodeJSON checks that the one JSON reader of request bodies reads
// every body as encoding/json does, except that it refuses duplicate keys:
// what it accepts, encoding/json accepts with the same value; what it calls
// malformed, encoding/json refuses too (or it nests deeper than any request
// needs).
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":"b"}`, `{"a":1,"a":2}`, `{"a":{"b":[1,{"c":null,"c":true}]}}`, `{"a":1}}`, `{} {}`,
		`{"a\u0062":1,"ab":2}`, `[1,2,"x"]`, `"s"`, `1e400`, `{"a":"\ud800"}`, "{\"\xff\":1,\"\xfe\":2}",
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := httpapi.DecodeJSON(raw)
		var want any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		stdErr := dec.Decode(&want)
		if stdErr == nil && dec.InputOffset() < int64(len(bytes.TrimRight(raw, " \t\r\n"))) {
			stdErr = errors.New("trailing data")
		}
		var dup *httpapi.DuplicateKeyError
		switch {
		case errors.As(err, &dup):
			if dup.Path == "" || dup.Key == dup.Path {
				t.Fatalf("duplicate key error without a path: %+v", dup)
			}
		case errors.Is(err, httpapi.ErrJSONSyntax):
			if stdErr == nil && bytes.Count(raw, []byte("["))+bytes.Count(raw, []byte("{")) <= 64 {
				t.Fatalf("DecodeJSON refuses %q, which encoding/json reads", raw)
			}
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		case stdErr != nil:
			t.Fatalf("DecodeJSON reads %q, which encoding/json refuses (%v)", raw, stdErr)
		case !reflect.DeepEqual(got, want):
			t.Fatalf("DecodeJSON reads %q as %#v, encoding/json as %#v", raw, got, want)
		}
	})
}
