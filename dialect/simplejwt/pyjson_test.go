package simplejwt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"testing"
)

// pyOracle is the program that says what Python makes of each input, the
// way Django REST framework's JSONParser reads a body: decode as UTF-8,
// json.loads refusing NaN and the infinities; and, for a number, what str()
// of it is.
const pyOracle = `
import base64, json, sys

def strict(o):
    raise ValueError("Out of range float values are not JSON compliant: " + repr(o))

out = []
for item in json.load(sys.stdin):
    raw = base64.b64decode(item)
    try:
        v = json.loads(raw.decode("utf-8"), parse_constant=strict)
        out.append(["", str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None])
    except ValueError as e:
        out.append([str(e), None])
json.dump(out, sys.stdout)
`

// python asks Debian's python3 about inputs; it skips the test without it.
func python(t *testing.T, inputs [][]byte) [][2]*string {
	t.Helper()
	enc := make([]string, len(inputs))
	for i, in := range inputs {
		enc[i] = base64.StdEncoding.EncodeToString(in)
	}
	stdin, _ := json.Marshal(enc)
	cmd := exec.Command("/usr/bin/python3", "-c", pyOracle)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("no /usr/bin/python3 to compare with: %v", err)
	}
	var res [][2]*string
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestPyJSONError compares pyJSONError with Python's own json module on
// hand-picked faults, on every prefix of a few documents, and on random
// one-byte changes of them; and pyNumber with str() of the numbers.
func TestPyJSONError(t *testing.T) {
	inputs := [][]byte{}
	for _, s := range []string{
		``, ` `, `{`, `[`, `[1,`, `{"a"`, `{"a":`, `"abc`, `"\`, `"\u`, `"\ud800\u12"`, `"\ud800\`, `"\ud800\u`,
		`"\ud800\udc00"`, `"\ud800\u0041"`, `-`, `-I`, `nul`, `01`, `1.`, `1e`, `1e+`, `[1,]`, `{"a":1,`, `-Infinity`,
		`Infinity`, `[NaN]`, `{"a":-}`, `{1:2}`, "{\"a\":\"x\ty\"}", `{"a":"\q"}`, "\ufeff{}", "{\"é\":\n \"x\",\n ]",
		"\xe4\xb8", "\xe4A", "a\xff", "\xed\xa0\x80", "\xc0\x80", "\xf4\x90\x80\x80", "\xe0\x80\x80", "\xf0\x9f\x98",
		"\xf0\x9fA", `{"a":"b"} x`, `[] []`, `tru`, `true`, `false`, `null`, `{"a":[1,2,{"b":null}]}`, "\t\n\r {} \n",
		`{"a" : 1 , "b" : [ ] }`, `["\/\b\f\n\r\t\"\\"]`, `{"a":"b"`, `[1 2]`, `{"a":1 "b"}`, `"\u00e9\uD83D\uDE00"`,
		`0`, `-0`, `-0.0`, `1.5`, `1e3`, `1E+2`, `1e-7`, `0.0001`, `123456789012345678901234567890`, `1e400`, `-1e400`,
		`12345678901234567.0`, `1e16`, `1.5e15`, `2.5E-5`, `0.1`, `100`, `5e-324`,
	} {
		inputs = append(inputs, []byte(s))
	}
	docs := []string{
		`{"username": "alice.williams", "password": "S3cur3P@ssw0rd!"}`,
		"{\n  \"refresh\": \"eyJ.a-b_c\",\n  \"n\": [1, -2.5e3, true, null, \"\\u00e9\\n\"]\n}",
		`[{"a":{"b":[]}},"x\"y",0.5,{}]`,
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	chars := []byte(" \t\n{}[]:,\"\\u0-.eE+axN\x01\xff")
	for _, d := range docs {
		for i := range len(d) + 1 {
			inputs = append(inputs, []byte(d[:i]))
		}
		for range 150 {
			b := []byte(d)
			b[rnd.IntN(len(b))] = chars[rnd.IntN(len(chars))]
			inputs = append(inputs, b)
		}
	}
	want := python(t, inputs)
	for i, in := range inputs {
		if got := pyJSONError(in); got != *want[i][0] {
			t.Errorf("%q: got %q, Python says %q", in, got, *want[i][0])
		}
		if n := want[i][1]; n != nil {
			if got := pyNumber(string(bytes.TrimSpace(in))); got != *n {
				t.Errorf("number %s: got %q, Python says %q", in, got, *n)
			}
		}
	}
}
