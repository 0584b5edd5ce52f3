package keys_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokend/tokend/keys"
)

// TestSymmetricKeyLength checks that a key shorter than its algorithm's
// hash (RFC 7518 §3.2), and so any key under 32 bytes, is refused, and
// that the refusal does not show the key.
func TestSymmetricKeyLength(t *testing.T) {
	for alg, n := range map[string]int{"HS256": 32, "HS384": 48, "HS512": 64} {
		short := strings.Repeat("k", n-1)
		_, err := keys.NewSymmetric("simplejwt", alg, []byte(short))
		if err == nil || strings.Contains(err.Error(), short) {
			t.Fatalf("%s with %d bytes: %v", alg, n-1, err)
		}
		if _, err := keys.NewSymmetric("simplejwt", alg, []byte(strings.Repeat("k", n))); err != nil {
			t.Fatalf("%s with %d bytes: %v", alg, n, err)
		}
	}
	for _, alg := range []string{"ES256", "RS256", "none", ""} {
		if _, err := keys.NewSymmetric("simplejwt", alg, []byte(strings.Repeat("k", 64))); err == nil {
			t.Fatalf("%q accepted as a symmetric algorithm", alg)
		}
	}
}

// TestSymmetricKeyNeverShown checks every way a key may be printed,
// logged or marshalled: none shows the secret.
func TestSymmetricKeyNeverShown(t *testing.T) {
	const secret = "the-django-signing-key-0123456789abcdef"
	k, err := keys.NewSymmetric("simplejwt", "HS256", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("key", "key", k)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("key", "key", k)
	js, _ := json.Marshal(k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q %x", k, k, k, k, k, k), logs.String(), string(js)} {
		if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprintf("%x", secret)) || !strings.Contains(s, k.ID) {
			t.Fatalf("key shown as %s", s)
		}
	}
}

// TestLoadSymmetric checks the key's two sources: the environment wins
// over the file; a file's final newline is not part of the key.
func TestLoadSymmetric(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef!"
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := keys.LoadSymmetric("simplejwt", "HS256", "", file)
	if err != nil {
		t.Fatal(err)
	}
	fromEnv, err := keys.LoadSymmetric("simplejwt", "HS256", secret, "")
	if err != nil {
		t.Fatal(err)
	}
	if !fromFile.SameSecret(fromEnv) || fromFile.ID != fromEnv.ID {
		t.Fatal("the file's key is not the environment's")
	}
	other, err := keys.LoadSymmetric("simplejwt", "HS256", secret+"x", file)
	if err != nil || other.SameSecret(fromFile) {
		t.Fatalf("the environment did not win: %v", err)
	}
	if _, err := keys.LoadSymmetric("simplejwt", "HS256", "", ""); err == nil {
		t.Fatal("no key at all accepted")
	}
	if _, err := keys.LoadSymmetric("simplejwt", "HS256", "", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing file accepted")
	}
}
