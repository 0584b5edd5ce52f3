package simplejwt

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/tokend/tokend/dialect"
)

// OPTIONS on a simplejwt path answers, as Django REST framework's
// SimpleMetadata does for a simplejwt view, a document that names the
// view, what it renders and parses, and the fields its POST takes
// (shared/spec/dialects.md). The descriptions are tokend's own words, and
// renders lists JSON only: tokend has no browsable HTML API.

// metaField is one serializer field of a view's POST.
type metaField struct {
	name     string
	Type     string `json:"type"`
	Required bool   `json:"required"`
	ReadOnly bool   `json:"read_only"`
	Label    string `json:"label"`
}

// metaFields writes the fields in the serializer's order.
type metaFields []metaField

func (fs metaFields) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(f.name)
		v, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

type metadata struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Renders     []string `json:"renders"`
	Parses      []string `json:"parses"`
	Actions     struct {
		POST metaFields `json:"POST"`
	} `json:"actions"`
}

// parses are the media types a simplejwt endpoint reads (request.go).
var parses = []string{"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}

func str(name, label string, required, readOnly bool) metaField {
	return metaField{name: name, Type: "string", Required: required, ReadOnly: readOnly, Label: label}
}

// views are the metadata of the four endpoints, by path.
var views = map[string]metadata{
	PathObtain: meta("Token Obtain Pair",
		"Logs a user in: a username and a password in, a refresh token and an access token out.",
		str("username", "Username", true, false), str("password", "Password", true, false)),
	PathRefresh: meta("Token Refresh",
		"Trades a refresh token for a new access token (and, with rotation on, a new refresh token).",
		str("refresh", "Refresh", true, false), str("access", "Access", false, true)),
	PathVerify: meta("Token Verify",
		"Answers 200 with an empty object when the token, access or refresh, is valid.",
		str("token", "Token", true, false)),
	PathBlacklist: meta("Token Blacklist",
		"Ends the login of a refresh token: it and the access tokens of its session stop working.",
		str("refresh", "Refresh", true, false)),
}

func meta(name, desc string, fields ...metaField) metadata {
	m := metadata{Name: name, Description: desc, Renders: []string{"application/json"}, Parses: parses}
	m.Actions.POST = fields
	return m
}

// serveOptions answers OPTIONS on path with its metadata.
func serveOptions(w http.ResponseWriter, path string) {
	dialect.WriteJSON(w, http.StatusOK, views[path])
}
