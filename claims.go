package tokend

import (
	"bytes"
	"encoding/json"
	"errors"
)

// EncodeClaims returns the stored form of a user's custom claims: a JSON
// object ("{}" for none).
func EncodeClaims(claims map[string]any) ([]byte, error) {
	if len(claims) == 0 {
		return []byte("{}"), nil
	}
	return json.Marshal(claims)
}

// DecodeClaims reads what EncodeClaims wrote; nil for no claims. Numbers
// come back as json.Number, so that none loses precision on the way
// through a float.
func DecodeClaims(b []byte) (map[string]any, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("{}")) || bytes.Equal(b, []byte("null")) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("claims: data after the object")
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}
