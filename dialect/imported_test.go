package dialect_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/tokendtest"
)

// TestImportedHashesLogIn: users whose passwords exist only as another
// system's hash (made by the real libraries: secret/testdata) log in
// through /oauth2/token, simplejwt and OCM; the first successful login
// replaces the hash with argon2id, and a wrong password changes nothing.
func TestImportedHashesLogIn(t *testing.T) {
	b, err := os.ReadFile("../secret/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct{ Maker, Password, Hash string }
	if err := json.Unmarshal(b, &vectors); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, grant.Limits{}, "127.0.0.1/32")
	logins := []struct {
		name string
		do   func(user, pw string) response
		ok   []string
	}{
		{"oauth", func(u, pw string) response { return e.oauthPassword(u, pw, "") }, []string{"access_token"}},
		{"simplejwt", func(u, pw string) response { return e.sjObtain(u, pw, "") }, []string{"access", "refresh"}},
		{"ocm", func(u, pw string) response { return e.ocmLogin(u, pw, "") }, []string{"accessToken"}},
	}
	seen := map[string]bool{}
	n := 0
	for _, v := range vectors {
		if seen[v.Maker] {
			continue
		}
		seen[v.Maker] = true
		login := logins[n%len(logins)]
		n++
		t.Run(v.Maker+" via "+login.name, func(t *testing.T) {
			name := fmt.Sprintf("imported-%d", n)
			u := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: name, PasswordHash: v.Hash, CreatedAt: time.Now()}
			if err := e.Store.CreateUser(t.Context(), u); err != nil {
				t.Fatal(err)
			}
			if r := login.do(name, "not "+v.Password); r.Status < 400 {
				t.Fatalf("a wrong password logged in: %d", r.Status)
			}
			if got, _ := e.Store.UserByID(t.Context(), u.ID); got.PasswordHash != v.Hash {
				t.Fatal("a wrong password changed the stored hash")
			}
			wantOK(t, login.do(name, v.Password), login.ok...)
			got, err := e.Store.UserByID(t.Context(), u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if v.Maker != "argon2id" && (got.PasswordHash == v.Hash || !strings.HasPrefix(got.PasswordHash, "$argon2id$") || secret.NeedsRehash(got.PasswordHash, tokendtest.Cheap)) {
				t.Fatalf("the hash was not upgraded to argon2id: %.20s", got.PasswordHash)
			}
			// The upgraded hash works, at every dialect.
			for _, l := range logins {
				wantOK(t, l.do(name, v.Password), l.ok...)
			}
		})
	}
}
