package token

import (
	"strconv"
	"unicode/utf8"
)

// appendClaims appends c as JSON, the same bytes json.Marshal(c) writes
// (TestClaimsJSONMatchesMarshal, FuzzClaimsJSON), without reflection and
// without allocating: encoding/json spent a tenth of a token's signing
// time, most of it in the audience's MarshalJSON. Fields come in the
// struct's order with its omitempty and omitzero rules; strings are
// escaped as encoding/json escapes them, except the audience, which go-jose's
// jwt.Audience.MarshalJSON writes with go-jose's own encoder (a single
// audience as a string) and encoding/json then copies as it is.
func appendClaims(b []byte, c *Claims) ([]byte, error) {
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
	}
	str := func(k, v string) {
		if v != "" {
			key(k)
			b = appendJSONString(b, v, false)
		}
	}
	num := func(k string, v int64) {
		key(k)
		b = strconv.AppendInt(b, v, 10)
	}
	list := func(k string, l []string, joseStyle bool) {
		key(k)
		b = append(b, '[')
		for i, s := range l {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s, joseStyle)
		}
		b = append(b, ']')
	}
	str("iss", c.Issuer)
	str("sub", c.Subject)
	switch len(c.Audience) {
	case 0:
	case 1:
		key("aud")
		b = appendJSONString(b, c.Audience[0], true)
	default:
		list("aud", c.Audience, true)
	}
	num("exp", c.ExpiresAt)
	if c.NotBefore != 0 {
		num("nbf", c.NotBefore)
	}
	num("iat", c.IssuedAt)
	key("jti")
	b = appendJSONString(b, c.ID, false)
	str("client_id", c.ClientID)
	str("scope", c.Scope)
	str("sid", c.SessionID)
	str("preferred_username", c.Username)
	if len(c.Roles) > 0 {
		list("roles", c.Roles, false)
	}
	if c.Authorities != nil {
		list("authorities", c.Authorities, false)
	}
	str("token_type", c.TokenType)
	if c.UserID != "" { // NumericID.MarshalJSON
		key("user_id")
		if decimalInt(string(c.UserID)) {
			b = append(b, c.UserID...)
		} else {
			b = appendJSONString(b, string(c.UserID), false)
		}
	}
	str("client_app_id", c.ClientAppID)
	str("taiki_user_id", c.TaikiUserID)
	str("mode", c.Mode)
	if c.Counter != nil {
		num("ctr", *c.Counter)
	}
	b = append(b, '}')
	if len(c.Extra) == 0 {
		return b, nil
	}
	// Custom claims: rare enough, and free-form enough, to go through
	// Claims.MarshalJSON's own code for them.
	return appendExtra(b, c.Extra)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json quotes a string with
// HTML escaping on: <, > and & as \u003c..., control characters as \n,
// \r, \t (and \b, \f, unless joseStyle: go-jose's encoder writes those as
// \u0008 and \u000c), invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string, joseStyle bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b' && !joseStyle:
				b = append(b, '\\', 'b')
			case c == '\f' && !joseStyle:
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
