package console

import (
	"net/http"
	"slices"
)

// Anything destructive (delete, disable, revoke, rotate) asks first. The
// page's script asks with a confirm dialog and adds confirmed=yes to the
// form; without the script, the server answers the unconfirmed POST with
// a confirmation page whose form posts the same fields again, confirmed.

type confirmView struct {
	Question, Button, Action, Cancel string
	Fields                           []field
}

type field struct{ Name, Value string }

// confirmed reports whether r, a POST, was confirmed; if not, it shows
// the confirmation page and reports false.
func (c *Console) confirmed(w http.ResponseWriter, r *http.Request, s *signin, question, button, cancel string) bool {
	if r.PostForm.Get("confirmed") == "yes" {
		return true
	}
	cv := confirmView{Question: question, Button: button, Action: r.URL.Path, Cancel: cancel}
	names := make([]string, 0, len(r.PostForm))
	for k := range r.PostForm {
		if k != "csrf" && k != "confirmed" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range r.PostForm[k] {
			cv.Fields = append(cv.Fields, field{k, v})
		}
	}
	v := s.view("Please confirm", "")
	v.Data = cv
	c.render(w, http.StatusOK, "confirm", v)
	return false
}
