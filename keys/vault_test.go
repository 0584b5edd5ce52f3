package keys_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokend/tokend/keys"
)

// Values that tokend before this check sealed under each key: they must
// still open, so that upgrading never locks a store out.
var sealedEarlier = []struct{ key, sealed string }{
	{"q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=", "dG9rZW5kLXNlYWxlZC12MTqaT1fMYZ3adNKzivSpbAhVOAsk9eTLlwe6sqSnwtq3WrT9P017xpjHceNCbw=="},
	{"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "dG9rZW5kLXNlYWxlZC12MTrjDhJ8zom3Wwz+PMRkxupUD9+kjONXxH6yFCqOmjFkkFMezrkdISxeti6Z9A=="},
	{"q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA", "dG9rZW5kLXNlYWxlZC12MTo4AgsRTMzpKIXgdR43plwQ4KlUhZGcPWLlRiYevUDNrAtm6ZStn4GXUuAC5g=="},
}

// A passphrase older versions accepted, and what they sealed under it.
const (
	passphrase            = "correct horse battery staple 123"
	sealedUnderPassphrase = "dG9rZW5kLXNlYWxlZC12MTq+l1pti51gjggVFTfKOecZyNbe1yojRMyVdW8kTfECbE2FIBzYrw7gb0UrZw=="
)

func open(t *testing.T, v *keys.Vault, sealed string) (string, error) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := v.Open("refresh_token_key", b)
	return string(plain), err
}

func TestLoadVaultKeepsValidKeys(t *testing.T) {
	for _, tc := range sealedEarlier {
		v, err := keys.LoadVault(tc.key, "")
		if err != nil {
			t.Fatalf("LoadVault(%q): %v", tc.key, err)
		}
		if got, err := open(t, v, tc.sealed); err != nil || got != "the plain secret" {
			t.Errorf("a value sealed earlier under %q opens to %q, %v", tc.key, got, err)
		}
	}
}

func TestLoadVaultRefusesWeakKeys(t *testing.T) {
	for name, key := range map[string]string{
		"32-character passphrase": passphrase,
		"long passphrase":         "this is a long passphrase that anyone could type in",
		"base64 of 24 bytes":      base64.StdEncoding.EncodeToString(make([]byte, 24)),
		"hex of 31 bytes":         hex.EncodeToString(make([]byte, 31)),
	} {
		t.Run(name, func(t *testing.T) {
			v, err := keys.LoadVault(key, "")
			if !errors.Is(err, keys.ErrWeakMasterKey) || v != nil {
				t.Fatalf("LoadVault = %v, %v; want ErrWeakMasterKey", v, err)
			}
			for _, want := range []string{"32 random bytes", "openssl rand -base64 32", "tokend key reseal"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestLoadVaultAcceptsRandomKeys(t *testing.T) {
	raw := make([]byte, 32)
	rand.Read(raw)
	dir := t.TempDir()
	binFile := filepath.Join(dir, "binary.key")
	// 32 random bytes straight into a file, with no text encoding.
	for raw[0] <= ' ' || raw[31] <= ' ' || isUTF8(raw) {
		rand.Read(raw)
	}
	if err := os.WriteFile(binFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ env, file string }{
		"base64":              {env: base64.StdEncoding.EncodeToString(raw)},
		"base64 url":          {env: base64.RawURLEncoding.EncodeToString(raw)},
		"hex":                 {env: hex.EncodeToString(raw)},
		"file with a newline": {file: writeFile(t, dir, base64.StdEncoding.EncodeToString(raw)+"\n")},
		"raw binary file":     {file: binFile},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := keys.LoadVault(tc.env, tc.file)
			if err != nil || v == nil {
				t.Fatalf("LoadVault = %v, %v", v, err)
			}
			sealed, err := v.Seal("label", []byte("plain"))
			if err != nil || !keys.IsSealed(sealed) {
				t.Fatalf("Seal = %q, %v", sealed, err)
			}
			if got, err := v.Open("label", sealed); err != nil || string(got) != "plain" {
				t.Fatalf("Open = %q, %v", got, err)
			}
		})
	}
}

func isUTF8(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

func writeFile(t *testing.T, dir, content string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "key")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// The old key of a reseal may be a passphrase older versions took, so
// that a store sealed under one can move to a strong key.
func TestLoadOldVaultTakesAPassphrase(t *testing.T) {
	v, err := keys.LoadOldVault(passphrase, "")
	if err != nil {
		t.Fatalf("LoadOldVault: %v", err)
	}
	if got, err := open(t, v, sealedUnderPassphrase); err != nil || got != "the plain secret" {
		t.Errorf("a value sealed under the passphrase opens to %q, %v", got, err)
	}
}

func TestIsSealed(t *testing.T) {
	v, _ := keys.LoadVault(sealedEarlier[0].key, "")
	sealed, _ := v.Seal("x", []byte("0\x82clear PKCS #8"))
	if !keys.IsSealed(sealed) || keys.IsSealed([]byte("0\x82clear PKCS #8")) || keys.IsSealed(nil) {
		t.Error("IsSealed does not tell sealed from clear values")
	}
	var none *keys.Vault
	if clear, _ := none.Seal("x", []byte("clear")); keys.IsSealed(clear) {
		t.Error("a nil vault sealed a value")
	}
}

func TestSameKey(t *testing.T) {
	a, _ := keys.LoadVault(sealedEarlier[0].key, "")
	a2, _ := keys.LoadVault(sealedEarlier[0].key+"\n", "")
	b, _ := keys.LoadVault(sealedEarlier[1].key, "")
	var none *keys.Vault
	if !a.SameKey(a2) || a.SameKey(b) || a.SameKey(none) || none.SameKey(a) || !none.SameKey(nil) {
		t.Error("SameKey does not tell keys apart")
	}
}
