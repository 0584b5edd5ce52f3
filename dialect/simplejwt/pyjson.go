package simplejwt

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Stock simplejwt reads a JSON body with Python's json module (through
// Django REST framework's JSONParser, which refuses NaN and the
// infinities) and answers a body it cannot read with "JSON parse error - "
// and Python's description of the fault. pyJSONError gives that
// description, so that a client sees the same 400 from tokend. It only
// words the answer: tokend reads the body with its own strict reader
// (httpapi.DecodeJSON), and a body either of them refuses is refused.

// pyJSONError returns Python's description of what is wrong with raw as a
// UTF-8 JSON document, or "" if Python would read it.
func pyJSONError(raw []byte) string {
	if msg := pyUTF8Error(raw); msg != "" {
		return msg
	}
	s := []rune(string(raw))
	if len(s) > 0 && s[0] == '\ufeff' {
		return pyAt(s, "Unexpected UTF-8 BOM (decode using utf-8-sig)", 0)
	}
	p := &pyScanner{s: s}
	end, err := p.value(p.ws(0))
	if err != nil {
		return err.Error()
	}
	if end = p.ws(end); end != len(s) {
		return pyAt(s, "Extra data", end)
	}
	return ""
}

// pyUTF8Error describes the first invalid UTF-8 sequence of b as Python's
// utf-8 codec does ("" when b is valid): the bytes of the sequence that
// were valid so far, and why it stopped.
func pyUTF8Error(b []byte) string {
	if utf8.Valid(b) {
		return ""
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			i++
			continue
		}
		n, lo, hi := 0, byte(0x80), byte(0xbf) // continuation bytes, and the range of the first one
		switch {
		case c >= 0xc2 && c <= 0xdf:
			n = 1
		case c >= 0xe0 && c <= 0xef:
			n = 2
			if c == 0xe0 {
				lo = 0xa0
			} else if c == 0xed {
				hi = 0x9f
			}
		case c >= 0xf0 && c <= 0xf4:
			n = 3
			if c == 0xf0 {
				lo = 0x90
			} else if c == 0xf4 {
				hi = 0x8f
			}
		default:
			return pyCodecError(b, i, 1, "invalid start byte")
		}
		for k := 1; k <= n; k++ {
			if i+k >= len(b) {
				return pyCodecError(b, i, len(b)-i, "unexpected end of data")
			}
			d := b[i+k]
			if k == 1 && (d < lo || d > hi) || k > 1 && (d < 0x80 || d > 0xbf) {
				return pyCodecError(b, i, k, "invalid continuation byte")
			}
		}
		i += n + 1
	}
	return ""
}

func pyCodecError(b []byte, at, n int, reason string) string {
	if n == 1 {
		return fmt.Sprintf("'utf-8' codec can't decode byte 0x%02x in position %d: %s", b[at], at, reason)
	}
	return fmt.Sprintf("'utf-8' codec can't decode bytes in position %d-%d: %s", at, at+n-1, reason)
}

// pyAt is Python's JSONDecodeError text: msg and where, as line, column
// and character index (in characters, not bytes).
func pyAt(s []rune, msg string, pos int) string {
	line, col := 1, pos+1
	for i := 0; i < pos && i < len(s); i++ {
		if s[i] == '\n' {
			line, col = line+1, pos-i
		}
	}
	return fmt.Sprintf("%s: line %d column %d (char %d)", msg, line, col, pos)
}

type pyError string

func (e pyError) Error() string { return string(e) }

// pyScanner follows the scanner of CPython's json module (its C
// implementation, which the module uses): where it stops, and what it says.
type pyScanner struct{ s []rune }

func (p *pyScanner) fail(msg string, pos int) error { return pyError(pyAt(p.s, msg, pos)) }

// ws skips JSON whitespace (space, tab, newline, carriage return).
func (p *pyScanner) ws(i int) int {
	for i < len(p.s) && strings.ContainsRune(" \t\n\r", p.s[i]) {
		i++
	}
	return i
}

func (p *pyScanner) has(i int, word string) bool {
	return i+len(word) <= len(p.s) && string(p.s[i:i+len(word)]) == word
}

// value reads the value at i and returns where it ends.
func (p *pyScanner) value(i int) (int, error) {
	if i >= len(p.s) {
		return 0, p.fail("Expecting value", i)
	}
	switch c := p.s[i]; {
	case c == '"':
		return p.str(i + 1)
	case c == '{':
		return p.object(i + 1)
	case c == '[':
		return p.array(i + 1)
	case p.has(i, "null"):
		return i + 4, nil
	case p.has(i, "true"):
		return i + 4, nil
	case p.has(i, "false"):
		return i + 5, nil
	}
	for _, word := range []string{"NaN", "Infinity", "-Infinity"} {
		if p.has(i, word) {
			// Django REST framework refuses them (its strict_constant).
			return 0, pyError("Out of range float values are not JSON compliant: '" + word + "'")
		}
	}
	if end, ok := p.number(i); ok {
		return end, nil
	}
	return 0, p.fail("Expecting value", i)
}

// number matches -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? at i.
func (p *pyScanner) number(i int) (int, bool) {
	s, j := p.s, i
	digit := func(k int) bool { return k < len(s) && s[k] >= '0' && s[k] <= '9' }
	if j < len(s) && s[j] == '-' {
		j++
	}
	switch {
	case digit(j) && s[j] != '0':
		for digit(j) {
			j++
		}
	case digit(j):
		j++
	default:
		return 0, false
	}
	if j < len(s) && s[j] == '.' && digit(j+1) {
		j += 2
		for digit(j) {
			j++
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '-' || s[k] == '+') {
			k++
		}
		if digit(k) {
			for digit(k) {
				k++
			}
			j = k
		}
	}
	return j, true
}

// str reads a string whose opening quote is at i-1 (strict: no control
// characters).
func (p *pyScanner) str(i int) (int, error) {
	s, begin := p.s, i-1
	hex4 := func(k int) bool {
		for _, c := range s[k : k+4] {
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
		return true
	}
	for {
		j := i
		for j < len(s) && s[j] != '"' && s[j] != '\\' {
			if s[j] <= 0x1f {
				return 0, p.fail("Invalid control character at", j)
			}
			j++
		}
		if j == len(s) {
			return 0, p.fail("Unterminated string starting at", begin)
		}
		if s[j] == '"' {
			return j + 1, nil
		}
		j++ // past the backslash
		if j == len(s) {
			return 0, p.fail("Unterminated string starting at", begin)
		}
		if s[j] != 'u' {
			if !strings.ContainsRune(`"\/bfnrt`, s[j]) {
				return 0, p.fail(`Invalid \escape`, j-1)
			}
			i = j + 1
			continue
		}
		// \uXXXX: four hex digits, and something after them.
		if j+5 >= len(s) || !hex4(j+1) {
			return 0, p.fail(`Invalid \uXXXX escape`, j)
		}
		i = j + 5
		code, _ := strconv.ParseUint(string(s[j+1:j+5]), 16, 16)
		// A high surrogate followed by \u: the second half is read too.
		if code >= 0xd800 && code <= 0xdbff && i+6 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
			if !hex4(i + 2) {
				return 0, p.fail(`Invalid \uXXXX escape`, i+1)
			}
			low, _ := strconv.ParseUint(string(s[i+2:i+6]), 16, 16)
			if low >= 0xdc00 && low <= 0xdfff {
				i += 6
			}
		}
	}
}

// object reads an object whose opening brace is at i-1.
func (p *pyScanner) object(i int) (int, error) {
	s := p.s
	i = p.ws(i)
	if i < len(s) && s[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return 0, p.fail("Expecting property name enclosed in double quotes", i)
		}
		end, err := p.str(i + 1)
		if err != nil {
			return 0, err
		}
		i = p.ws(end)
		if i >= len(s) || s[i] != ':' {
			return 0, p.fail("Expecting ':' delimiter", i)
		}
		if i, err = p.value(p.ws(i + 1)); err != nil {
			return 0, err
		}
		i = p.ws(i)
		if i < len(s) && s[i] == '}' {
			return i + 1, nil
		}
		if i >= len(s) || s[i] != ',' {
			return 0, p.fail("Expecting ',' delimiter", i)
		}
		i = p.ws(i + 1)
	}
}

// array reads an array whose opening bracket is at i-1.
func (p *pyScanner) array(i int) (int, error) {
	s := p.s
	i = p.ws(i)
	if i < len(s) && s[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = p.value(i); err != nil {
			return 0, err
		}
		i = p.ws(i)
		if i < len(s) && s[i] == ']' {
			return i + 1, nil
		}
		if i >= len(s) || s[i] != ',' {
			return 0, p.fail("Expecting ',' delimiter", i)
		}
		i = p.ws(i + 1)
	}
}

// pyNumber is the text Python gives a JSON number (str() of the int or
// float json reads it as), which is what a Django REST framework CharField
// makes of a number: integers as written (-0 is 0), other numbers in
// Python's shortest float form (1000.0, 1e+16, inf).
func pyNumber(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		if lit == "-0" {
			return "0"
		}
		return lit
	}
	f, _ := strconv.ParseFloat(lit, 64) // out of range: ±Inf, as Python's float()
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	// Python's repr: the shortest digits that read back, in exponent form
	// when the decimal exponent is below -4 or at least 16.
	e := strconv.FormatFloat(f, 'e', -1, 64) // 1e+16, 1.5e-05
	if exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:]); f != 0 && (exp < -4 || exp >= 16) {
		return e
	}
	out := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(out, ".") {
		out += ".0"
	}
	return out
}

// pyTypeName is the Python type name of a JSON value as json reads it.
func pyTypeName(v any, lit string) string {
	switch v.(type) {
	case []any:
		return "list"
	case string:
		return "str"
	case bool:
		return "bool"
	case map[string]any:
		return "dict"
	}
	if strings.ContainsAny(lit, ".eE") {
		return "float"
	}
	return "int"
}
