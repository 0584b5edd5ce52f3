package console

import (
	"net/http"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

type keysView struct {
	Keys []grant.KeyInfo
	Algs []string
}

var algs = []string{"ES256", "EdDSA", "RS256", "RS512"}

func (c *Console) keys(w http.ResponseWriter, r *http.Request, s *signin) error {
	v := s.view("Signing keys", "keys")
	v.Flash = flashOf(r)
	v.Form = map[string]string{"alg": c.engine.Config().Alg}
	return c.keysPage(w, r, v, http.StatusOK)
}

func (c *Console) keysPage(w http.ResponseWriter, r *http.Request, v *view, status int) error {
	ks, err := c.mgr.Keys(r.Context())
	if err != nil {
		return err
	}
	v.Data = keysView{Keys: ks, Algs: algs}
	c.render(w, status, "keys", v)
	return nil
}

// rotateKey adds a new key to an algorithm's line, signing at once or
// after the pre-publication asked for.
func (c *Console) rotateKey(w http.ResponseWriter, r *http.Request, s *signin) error {
	alg := r.PostForm.Get("alg")
	pre, perrs := durationField("prepublish", r.PostForm.Get("prepublish"))
	err := tokend.Invalid(perrs)
	if err == nil {
		when := "It signs at once."
		if pre > 0 {
			when = "It is published now and signs in " + pre.String() + "."
		}
		if !c.confirmed(w, r, s, "Add a new "+alg+" signing key? "+when+" The key it replaces stays published while its tokens may live.", "Rotate key", Prefix+"keys") {
			return nil
		}
		_, err = c.mgr.RotateKey(r.Context(), alg, pre)
	}
	if err != nil {
		v := s.view("Signing keys", "keys")
		v.formOf(r)
		if !v.setFieldErrors(err) {
			return err
		}
		return c.keysPage(w, r, v, http.StatusBadRequest)
	}
	seeOther(w, r, Prefix+"keys?done=key-rotated")
	return nil
}
