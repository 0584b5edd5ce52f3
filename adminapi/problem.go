package adminapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/tokend/tokend"
)

// problemDoc is an RFC 9457 problem details document.
type problemDoc struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []fieldError `json:"errors,omitempty"`
}

type fieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

const problemBase = "https://tokend.dev/problems/"

var (
	errMethod   = &tokend.Error{Code: "method_not_allowed", Message: "method not allowed on this path"}
	errTooLarge = &tokend.Error{Code: tokend.EINVALID, Message: "request body larger than 64 KiB"}
	errNotJSON  = &tokend.Error{Code: tokend.EINVALID, Message: "the body must be JSON (Content-Type: application/json)"}
)

// problem writes err as a problem document: the one place that turns the
// engine's error codes into the admin API's statuses. Internal errors are
// logged here, once, and shown as a generic message.
func (a *API) problem(w http.ResponseWriter, r *http.Request, err error) {
	p := problemDoc{Type: "about:blank", Detail: tokend.ErrorMessage(err)}
	h := w.Header()
	var se scopeError
	switch code := tokend.ErrorCode(err); {
	case errors.As(err, &se):
		p.Status, p.Type, p.Detail = http.StatusForbidden, problemBase+"insufficient-scope", "this token does not carry the scope "+se.scope
		h.Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+se.scope+`"`)
	case err == errMethod:
		p.Status = http.StatusMethodNotAllowed
	case err == errTooLarge, err == errImportTooLarge:
		p.Status = http.StatusRequestEntityTooLarge
	case err == errNotJSON, err == errNotJSONLines:
		p.Status = http.StatusUnsupportedMediaType
	case code == tokend.EINVALID:
		p.Status, p.Type = http.StatusBadRequest, problemBase+"invalid-request"
		for _, f := range tokend.ErrorFields(err) {
			p.Errors = append(p.Errors, fieldError{Field: f.Field, Detail: f.Detail})
		}
	case code == tokend.EINVALIDTOKEN:
		p.Status, p.Type = http.StatusUnauthorized, problemBase+"invalid-token"
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	case code == tokend.ENOTFOUND:
		p.Status = http.StatusNotFound
	case code == tokend.ECONFLICT:
		p.Status, p.Type = http.StatusConflict, problemBase+"duplicate-username"
	case code == tokend.EPRECONDITION:
		p.Status, p.Type = http.StatusPreconditionFailed, problemBase+"stale-etag"
	case code == tokend.ETOOMANY:
		p.Status = http.StatusTooManyRequests
		h.Set("Retry-After", tokend.RetryAfterSeconds(err))
	case code == tokend.EUNAVAILABLE:
		p.Status = http.StatusServiceUnavailable
		h.Set("Retry-After", tokend.RetryAfterSeconds(err))
		a.Log.Warn("admin request refused: unavailable", "path", r.URL.Path, "err", err)
	default:
		p.Status, p.Detail = http.StatusInternalServerError, "internal error"
		a.Log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	p.Title = http.StatusText(p.Status)
	body, _ := json.Marshal(p)
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(p.Status)
	w.Write(append(body, '\n'))
}

// writeJSON writes v as the response body with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n')) // an error here is a client gone away: nothing more to tell it
	return nil
}
