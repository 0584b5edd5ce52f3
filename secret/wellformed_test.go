package secret_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokend/tokend/secret"
)

// TestWellFormed: every hash the real libraries made is well formed; a
// damaged one is refused without being quoted, and whatever WellFormed
// lets through, CheckPassword can check (so that an import never brings a
// user whose hash fails at login).
func TestWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range loadVectors(t) {
		if err := secret.WellFormed(v.Hash); err != nil {
			t.Errorf("%s: %v", v.Maker, err)
		}
		if seen[v.Maker] {
			continue
		}
		seen[v.Maker] = true
		t.Run(v.Maker, func(t *testing.T) {
			h := v.Hash
			damaged := map[string]string{
				"cut in half":       h[:len(h)/2],
				"last byte dropped": h[:len(h)-1],
				"junk in the body":  h[:len(h)-6] + "!!" + h[len(h)-4:],
				"junk appended":     h + "$x",
			}
			refused := 0
			for name, d := range damaged {
				err := secret.WellFormed(d)
				if err == nil {
					if _, cerr := secret.CheckPassword(v.Password, d); cerr != nil {
						t.Errorf("%s: well formed, yet CheckPassword fails: %v", name, cerr)
					}
					continue
				}
				refused++
				if quotes(err.Error(), d) {
					t.Errorf("%s: the error quotes the hash: %v", name, err)
				}
			}
			if refused < 2 {
				t.Errorf("only %d of %d damaged hashes refused", refused, len(damaged))
			}
		})
	}
	for _, h := range []string{"", "plaintext", "$2b$99$" + strings.Repeat("a", 53), "pbkdf2_sha256$0$salt$aGFzaA==", "$scrypt$ln=40,r=8,p=1$c2FsdA$aGFzaA"} {
		err := secret.WellFormed(h)
		if err == nil {
			t.Errorf("%q: well formed", h)
		} else if h != "" && quotes(err.Error(), h) {
			t.Errorf("%q: the error quotes the hash: %v", h, err)
		}
	}
	if err := secret.WellFormed("plaintext"); !errors.Is(err, secret.ErrUnknownFormat) {
		t.Errorf("an unknown format: %v", err)
	}
}

// quotes reports whether msg holds 12 bytes in a row of h.
func quotes(msg, h string) bool {
	for i := 0; i+12 <= len(h); i++ {
		if strings.Contains(msg, h[i:i+12]) {
			return true
		}
	}
	return false
}
