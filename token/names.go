package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// ClaimNames renames dialect claims on the wire: tokend's name of a claim
// (one of Renamable) -> the name a deployment's own verifiers read, such
// as simplejwt's USER_ID_CLAIM and TOKEN_TYPE_CLAIM settings. Tokens are
// written (SignNamed) and read back (Expectations.Names) with the same
// map; nil renames nothing. The engine never needs a renamed claim to find
// a token's user or kind (sub, sid, ctr and the audience say those).
type ClaimNames map[string]string

// Renamable are the claims a ClaimNames may rename.
var Renamable = []string{"user_id", "token_type", "taiki_user_id"}

// claimTags are the names of every claim Claims writes.
var claimTags = func() []string {
	var out []string
	t := reflect.TypeFor[Claims]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}()

// Validate refuses a rename of a claim that is not Renamable, a new name
// that is empty, longer than 64 bytes or not printable ASCII, a new name
// that is the name of a claim tokend writes (the two would collide), and
// one new name for two claims.
func (n ClaimNames) Validate() error {
	var errs []error
	seen := map[string]string{}
	for from, to := range n {
		switch {
		case !slices.Contains(Renamable, from):
			errs = append(errs, fmt.Errorf("claim %q cannot be renamed (only %s)", from, strings.Join(Renamable, ", ")))
		case from == to:
		case to == "" || len(to) > 64 || strings.IndexFunc(to, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
			errs = append(errs, fmt.Errorf("claim name %q: want 1 to 64 printable ASCII characters", to))
		case slices.Contains(claimTags, to):
			errs = append(errs, fmt.Errorf("claim name %q is a claim tokend writes itself; choose another name for %s", to, from))
		case seen[to] != "":
			errs = append(errs, fmt.Errorf("claim name %q given to both %s and %s", to, seen[to], from))
		default:
			seen[to] = from
		}
	}
	return errors.Join(errs...)
}

// renames reports whether n renames anything.
func (n ClaimNames) renames() bool {
	for from, to := range n {
		if from != to {
			return true
		}
	}
	return false
}

// marshal writes c's claims, the renamed ones under their new names.
func (c *Claims) marshal(names ClaimNames) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil || !names.renames() {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for from, to := range names {
		if v, ok := m[from]; ok && from != to {
			delete(m, from)
			m[to] = v
		}
	}
	return json.Marshal(m)
}

// unmarshal reads claims written with names: a renamed claim is read from
// its new name only (a claim under tokend's own name is then ignored).
func (c *Claims) unmarshal(payload []byte, names ClaimNames) error {
	if !names.renames() {
		return json.Unmarshal(payload, c)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return err
	}
	moved := map[string]json.RawMessage{}
	for from, to := range names {
		if from == to {
			continue
		}
		if v, ok := m[to]; ok {
			moved[from] = v
		}
		delete(m, from)
		delete(m, to)
	}
	for k, v := range moved {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, c)
}

// NumericID is a claim that holds an id: written as a JSON number when the
// id is a decimal integer in canonical form that fits 64 bits (as Django's
// integer primary keys are, and as simplejwt writes user_id), else as a
// string. It reads back from either form as the id's text, so a user whose
// id is "42" is found from the claim 42.
type NumericID string

// decimalInt reports whether s is an int64 in canonical decimal form.
func decimalInt(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && strconv.FormatInt(n, 10) == s
}

// MarshalJSON writes the id as a number or a string.
func (id NumericID) MarshalJSON() ([]byte, error) {
	if decimalInt(string(id)) {
		return []byte(id), nil
	}
	return json.Marshal(string(id))
}

// UnmarshalJSON reads a string, or a number that is a canonical decimal
// integer; anything else is an error (the token is then refused).
func (id *NumericID) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = NumericID(s)
		return nil
	case decimalInt(string(b)):
		*id = NumericID(b)
		return nil
	}
	return errors.New("an id claim must be a string or a decimal integer")
}
