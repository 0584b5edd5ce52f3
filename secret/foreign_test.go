package secret_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/tokend/tokend/secret"
)

type vector struct {
	Maker    string `json:"maker"`
	Password string `json:"password"`
	Hash     string `json:"hash"`
}

// loadVectors reads the hashes that the real libraries made
// (testdata/make_vectors.py).
func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// weakMakers are the formats an import refuses unless told otherwise.
var weakMakers = map[string]bool{"django-md5": true, "django-sha1": true, "django-unsalted-md5": true, "django-unsalted-sha1": true, "md5": true, "sha1": true}

// TestForeignHashes checks every hash the real libraries made: the right
// password matches, a wrong one and a one-character change do not, and
// each needs rehashing to argon2id.
func TestForeignHashes(t *testing.T) {
	makers := map[string]bool{}
	for _, v := range loadVectors(t) {
		first := !makers[v.Maker]
		makers[v.Maker] = true
		t.Run(v.Maker, func(t *testing.T) {
			format, weak, err := secret.Identify(v.Hash)
			if err != nil {
				t.Fatalf("identify %s: %v", v.Hash, err)
			}
			if weak != weakMakers[v.Maker] {
				t.Fatalf("%s identified as %s, weak=%v", v.Maker, format, weak)
			}
			// bcrypt reads 72 bytes of a password and no more, at its
			// origin as here: a longer one matches on its first 72.
			truncated := (strings.HasPrefix(v.Hash, "$2") || strings.HasPrefix(v.Hash, "bcrypt$")) && len(v.Password) > 72
			for _, c := range []struct {
				pw   string
				want bool
			}{
				{v.Password, true},
				{"wrong password", false},
				{v.Password[:len(v.Password)-1], truncated},
				{strings.ToUpper(v.Password), false},
			} {
				if !first && !c.want {
					continue // wrong passwords: once per format is enough (some formats cost a second)
				}
				got, err := secret.CheckPassword(c.pw, v.Hash)
				if err != nil || got != c.want {
					t.Fatalf("%s (%s): check %q = %v, %v; want %v", v.Maker, format, c.pw, got, err, c.want)
				}
			}
			// Everything but tokend's own argon2id PHC string at the
			// current parameters (which the argon2id vectors use) is
			// replaced at the first login.
			if want := v.Maker != "argon2id"; secret.NeedsRehash(v.Hash, secret.DefaultParams) != want {
				t.Fatalf("%s: NeedsRehash is %v", v.Maker, !want)
			}
		})
	}
	if len(makers) < 20 {
		t.Fatalf("only %d formats in the vectors", len(makers))
	}
}

func TestRehashOnlyWhatIsBelowTheParameters(t *testing.T) {
	cur, err := secret.HashPassword("pw", secret.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if secret.NeedsRehash(cur, secret.DefaultParams) {
		t.Fatal("a hash with the current parameters asks for a rehash")
	}
	weaker := secret.DefaultParams
	weaker.MemoryKiB /= 2
	old, _ := secret.HashPassword("pw", weaker)
	if !secret.NeedsRehash(old, secret.DefaultParams) {
		t.Fatal("a hash below the current parameters does not ask for a rehash")
	}
}

// TestHostileHashes: a stored hash that is malformed, or asks for absurd
// work, is an error, never a match and never minutes of CPU.
func TestHostileHashes(t *testing.T) {
	for _, h := range []string{
		"", "plain", "$2b$31$" + strings.Repeat("a", 53), "$2b$10$short",
		"pbkdf2_sha256$999999999$salt$aGFzaA==", "pbkdf2_sha256$x$salt$aGFzaA==", "pbkdf2_sha256$100$salt",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "$argon2id$v=16$m=1024,t=1,p=1$c2FsdA$aGFzaA",
		"$scrypt$ln=40,r=8,p=1$c2FsdA$aGFzaA", "scrypt:1048577:8:1$salt$00", "scrypt:33554432:8:1$salt$00",
		"pbkdf2:md4:1000$salt$00", "pbkdf2:sha256:1000$salt$nothex",
		`{"algorithm":"pbkdf2-md5","hashIterations":1,"salt":"","value":"AA=="}`, `{"algorithm":"pbkdf2-sha256","hashIterations":0,"salt":"","value":"AA=="}`, `{`,
	} {
		ok, err := secret.CheckPassword("pw", h)
		if ok || err == nil {
			t.Errorf("%q: ok=%v err=%v, want an error", h, ok, err)
		}
	}
}

// BenchmarkCheckPassword measures one login's hash check in each format,
// at the parameters the real libraries chose (so an operator knows what,
// say, an imported bcrypt cost-10 hash costs at login):
//
//	go test ./secret -run '^$' -bench CheckPassword -benchtime 5x
func BenchmarkCheckPassword(b *testing.B) {
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		b.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		b.Fatal(err)
	}
	seen := map[string]bool{}
	for _, v := range vs {
		if seen[v.Maker] {
			continue
		}
		seen[v.Maker] = true
		b.Run(v.Maker, func(b *testing.B) {
			for b.Loop() {
				if ok, err := secret.CheckPassword(v.Password, v.Hash); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
