package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// pages are the parsed templates, one per page, each with the layout.
type pages struct {
	byName  map[string]*template.Template
	version map[string]string // static file name -> digest, for cache busting
}

func mustParsePages() *pages {
	p := &pages{byName: map[string]*template.Template{}, version: map[string]string{}}
	statics, _ := fs.Glob(staticFiles, "static/*")
	for _, name := range statics {
		b, _ := staticFiles.ReadFile(name)
		sum := sha256.Sum256(b)
		p.version[path.Base(name)] = hex.EncodeToString(sum[:6])
	}
	funcs := template.FuncMap{
		"static": func(name string) string { return Prefix + "static/" + name + "?v=" + p.version[name] },
		"when":   formatTime,
		"join":   func(l []string, sep string) string { return strings.Join(l, sep) },
		"secs":   func(d time.Duration) int64 { return int64(d / time.Second) },
		"path":   url.PathEscape,
		"query":  url.QueryEscape,
	}
	names, _ := fs.Glob(templateFiles, "templates/*.html")
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".html")
		if base == "layout" {
			continue
		}
		p.byName[base] = template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", name))
	}
	return p
}

// formatTime shows a time in UTC to the second; "never" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// view is what every page's template gets.
type view struct {
	Title string
	Nav   string // the active section of the menu
	// Admin is the signed-in administrator (nil on the sign-in pages);
	// CSRF is the token every form of the page carries.
	Admin *tokend.User
	CSRF  string
	Flash string
	// Error is the page's error message; FieldList its bad fields, each
	// also shown next to its field (FE).
	Error     string
	FieldList []fieldErr
	// Form holds the values of the form being shown (as submitted, when
	// it is shown again with errors); Multi the fields with several values.
	Form  map[string]string
	Multi map[string][]string
	Data  any
}

// fieldErr is one bad field as a page shows it.
type fieldErr struct {
	Key    string // the form field it belongs to
	Field  string // the path the engine named
	Detail string
}

// fieldKey is the form field that a field path ("roles[2]", "claims.iss")
// belongs to.
func fieldKey(field string) string {
	if i := strings.IndexAny(field, "[."); i > 0 {
		return field[:i]
	}
	return field
}

// FE returns the errors of one form field, for the "ferr" template.
func (v *view) FE(key string) feView {
	out := feView{Key: key}
	for _, f := range v.FieldList {
		if f.Key == key {
			msg := f.Detail
			if f.Field != key {
				msg = f.Field + ": " + f.Detail
			}
			out.Msgs = append(out.Msgs, msg)
		}
	}
	return out
}

// Invalid reports whether a form field has errors.
func (v *view) Invalid(key string) bool { return len(v.FE(key).Msgs) > 0 }

// Has reports whether a multi-valued form field holds value.
func (v *view) Has(key, value string) bool { return slices.Contains(v.Multi[key], value) }

type feView struct {
	Key  string
	Msgs []string
}

// setFieldErrors fills v's error from err when err names bad fields, and
// reports whether it did.
func (v *view) setFieldErrors(err error) bool {
	fields := tokend.ErrorFields(err)
	if len(fields) == 0 {
		if f := tokend.ErrorField(err); f != "" {
			fields = []tokend.FieldError{{Field: f, Detail: tokend.ErrorMessage(err)}}
		}
	}
	if len(fields) == 0 {
		return false
	}
	for _, f := range fields {
		v.FieldList = append(v.FieldList, fieldErr{Key: fieldKey(f.Field), Field: f.Field, Detail: f.Detail})
	}
	v.Error = "Please correct the fields marked below."
	if len(fields) == 1 {
		v.Error = "Please correct the field marked below."
	}
	return true
}

// formOf copies a request's form into v.
func (v *view) formOf(r *http.Request) {
	v.Form, v.Multi = map[string]string{}, map[string][]string{}
	for k, vals := range r.PostForm {
		if k == "csrf" || k == "password" || k == "password2" {
			continue // never echo a password back
		}
		v.Form[k] = vals[0]
		v.Multi[k] = vals
	}
}

// securityHeaders are sent with every answer of the console.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
	"X-Content-Type-Options": "nosniff",
}

func setSecurityHeaders(h http.Header) {
	for k, v := range securityHeaders {
		h.Set(k, v)
	}
}

// render writes page with status. The template runs into a buffer first,
// so that a failure is a clean 500, never half a page.
func (c *Console) render(w http.ResponseWriter, status int, page string, v *view) {
	t := c.pages.byName[page]
	var buf bytes.Buffer
	err := errors.New("no template " + page)
	if t != nil {
		err = t.ExecuteTemplate(&buf, "layout", v)
	}
	if err != nil {
		c.log.Error("render console page", "page", page, "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("<!DOCTYPE html><title>Error</title><p>Internal error.</p>\n")
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Errors of the console's own making.
var (
	errCSRF        = &tokend.Error{Code: tokend.EFORBIDDEN, Message: "This form is missing its security token, or the token is stale. Reload the page and try again."}
	errCrossOrigin = &tokend.Error{Code: tokend.EFORBIDDEN, Message: "This request came from another site and was refused."}
	errTooLarge    = &tokend.Error{Code: tokend.EINVALID, Message: "The form is larger than 64 KiB."}
	errNotFound    = &tokend.Error{Code: tokend.ENOTFOUND, Message: "There is no such page."}
)

// status is the one place that turns the engine's error codes into the
// console's statuses; unknown errors are logged here, once, and shown as
// a generic message.
func (c *Console) status(r *http.Request, w http.ResponseWriter, err error) (int, string) {
	msg := tokend.ErrorMessage(err)
	switch tokend.ErrorCode(err) {
	case tokend.EINVALID:
		if err == errTooLarge {
			return http.StatusRequestEntityTooLarge, msg
		}
		return http.StatusBadRequest, msg
	case tokend.EINVALIDGRANT:
		return http.StatusUnauthorized, msg
	case tokend.EFORBIDDEN:
		return http.StatusForbidden, msg
	case tokend.ENOTFOUND:
		return http.StatusNotFound, msg
	case tokend.ECONFLICT, tokend.EPRECONDITION:
		return http.StatusConflict, msg
	case tokend.ETOOMANY:
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
		return http.StatusTooManyRequests, msg
	case tokend.EUNAVAILABLE:
		w.Header().Set("Retry-After", tokend.RetryAfterSeconds(err))
		c.log.Warn("console request refused: unavailable", "path", r.URL.Path, "err", err)
		return http.StatusServiceUnavailable, "tokend is overloaded or its store is unreachable; try again in a moment."
	default:
		c.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return http.StatusInternalServerError, "Internal error: the server log has the details."
	}
}

// fail shows err on an error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *signin, err error) {
	setSecurityHeaders(w.Header())
	code, msg := c.status(r, w, err)
	v := s.view(http.StatusText(code), "")
	v.Error = msg
	v.Data = code
	c.render(w, code, "error", v)
}

// seeOther redirects after a change (303: the browser follows with a GET).
func seeOther(w http.ResponseWriter, r *http.Request, to string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// static serves the embedded CSS and JavaScript.
func (c *Console) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := staticFiles.ReadFile("static/" + path.Base(name))
	if err != nil || path.Base(name) != name {
		c.fail(w, r, nil, errNotFound)
		return
	}
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
	h := w.Header()
	h.Set("Content-Type", types[path.Ext(name)])
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("ETag", `"`+c.pages.version[name]+`"`)
	if r.Header.Get("If-None-Match") == `"`+c.pages.version[name]+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// flashes are the messages a redirect after a change may ask for (by
// key, so that no text of the URL is ever shown).
var flashes = map[string]string{
	"welcome":         "Welcome. You are the first administrator of this tokend.",
	"user-created":    "The user was created.",
	"user-updated":    "The user was saved.",
	"user-disabled":   "The user was disabled, and every session of the user ended.",
	"user-enabled":    "The user was enabled.",
	"user-deleted":    "The user was deleted.",
	"password-set":    "The password was set; the user's sessions and older tokens no longer work.",
	"session-revoked": "The session was revoked.",
	"client-updated":  "The client app was saved.",
	"client-disabled": "The client app was disabled: its credentials and tokens no longer work.",
	"client-enabled":  "The client app was enabled.",
	"client-deleted":  "The client app was deleted.",
	"key-rotated":     "A new signing key was added.",
}

// signinNotes are the reasons the sign-in page may give for showing up.
var signinNotes = map[string]string{
	"signedout": "You are signed out.",
	"idle":      "You were signed out after a while without activity. Please sign in again.",
	"expired":   "Your session reached its time limit. Please sign in again.",
	"ended":     "Your session has ended. Please sign in again.",
	"revoked":   "Your session was ended because your account changed. Please sign in again.",
}

func flashOf(r *http.Request) string { return flashes[r.URL.Query().Get("done")] }

func pluralize(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
