package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/keys"
)

// newMasterKey writes a fresh master key (the base64 of 32 random bytes)
// to a file in dir and returns the file and the vault it makes.
func newMasterKey(t *testing.T, dir, name string) (string, *keys.Vault) {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return masterKeyFile(t, dir, name, base64.StdEncoding.EncodeToString(b)+"\n")
}

func masterKeyFile(t *testing.T, dir, name, content string) (string, *keys.Vault) {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	v, _ := keys.LoadOldVault("", file)
	return file, v
}

// storedKeys returns the private parts of the store's signing keys as stored.
func storedKeys(t *testing.T, s tokend.Store) map[string][]byte {
	t.Helper()
	stored, err := s.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, k := range stored {
		out[k.ID] = k.PrivateKey
	}
	return out
}

// wantSealedUnder fails t unless every value is sealed (once) under v, or
// in the clear when v is nil, and opens to a private key.
func wantSealedUnder(t *testing.T, v *keys.Vault, stored map[string][]byte) {
	t.Helper()
	if len(stored) == 0 {
		t.Fatal("no keys stored")
	}
	for kid, b := range stored {
		if keys.IsSealed(b) != (v != nil) {
			t.Fatalf("key %s: sealed = %v, want %v", kid, keys.IsSealed(b), v != nil)
		}
		plain, err := v.Open(kid, b)
		if err != nil {
			t.Fatalf("key %s does not open: %v", kid, err)
		}
		if _, err := x509.ParsePKCS8PrivateKey(plain); err != nil {
			t.Fatalf("key %s opens to no private key (sealed twice?): %v", kid, err)
		}
	}
}

func TestKeyResealUsage(t *testing.T) {
	dir := t.TempDir()
	a, _ := newMasterKey(t, dir, "a.key")
	b, _ := newMasterKey(t, dir, "b.key")
	weak, _ := masterKeyFile(t, dir, "weak.key", "correct horse battery staple 123\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no key at all", nil, "no new master key"},
		{"no new key", []string{"--old-master-key-file", a}, "--remove-master-key"},
		{"same key", []string{"--old-master-key-file", a, "--master-key-file", a}, "the same"},
		{"remove without an old key", []string{"--remove-master-key"}, "needs the old master key"},
		{"remove with a new key", []string{"--old-master-key-file", a, "--master-key-file", b, "--remove-master-key"}, "without a new master key"},
		{"weak new key", []string{"--old-master-key-file", a, "--master-key-file", weak}, "32 random bytes"},
		{"missing old key file", []string{"--old-master-key-file", filepath.Join(dir, "nope"), "--master-key-file", a}, "read master key file"},
		{"argument", []string{"--master-key-file", a, "extra"}, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.run("", append([]string{"key", "reseal"}, tc.args...)...)
			ue := wantUsageError(t, err)
			if !strings.Contains(ue.msg, tc.want) {
				t.Errorf("usage error %q does not say %q", ue.msg, tc.want)
			}
			if _, err := os.Stat(f.path); !os.IsNotExist(err) {
				t.Errorf("wrong usage created the store file")
			}
		})
	}
}

func TestKeyReseal(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	oldFile, oldVault := newMasterKey(t, dir, "old.key")
	newFile, newVault := newMasterKey(t, dir, "new.key")
	f.must("", "key", "rotate")
	f.must("", "key", "rotate", "--alg", "EdDSA")
	wantSealedUnder(t, nil, storedKeys(t, f.store()))

	// From no key to a key.
	if out := f.must("", "key", "reseal", "--master-key-file", oldFile); !strings.Contains(out, "resealed 2 secrets") {
		t.Errorf("reseal output %q", out)
	}
	sealed := storedKeys(t, f.store())
	wantSealedUnder(t, oldVault, sealed)
	// Again: what is sealed under the key stays as it is.
	if out := f.must("", "key", "reseal", "--master-key-file", oldFile); !strings.Contains(out, "resealed 0 secrets") {
		t.Errorf("a second reseal output %q", out)
	}
	for kid, b := range storedKeys(t, f.store()) {
		if string(b) != string(sealed[kid]) {
			t.Errorf("a second reseal rewrote key %s", kid)
		}
	}

	// Without the old key, or with a wrong one: refused, nothing changed.
	_, _, err := f.run("", "key", "reseal", "--master-key-file", newFile)
	wantCode(t, err, tokend.EINVALID)
	if !strings.Contains(err.Error(), "give it as the old key") {
		t.Errorf("reseal without the old key: %v", err)
	}
	wrongFile, _ := newMasterKey(t, dir, "wrong.key")
	_, _, err = f.run("", "key", "reseal", "--old-master-key-file", wrongFile, "--master-key-file", newFile)
	wantCode(t, err, tokend.EINVALID)
	if !strings.Contains(err.Error(), "neither the old nor the new") {
		t.Errorf("reseal with a wrong old key: %v", err)
	}
	wantSealedUnder(t, oldVault, storedKeys(t, f.store()))

	// From the old key to the new one; TOKEND_OLD_MASTER_KEY works as the flag does.
	old, _ := os.ReadFile(oldFile)
	t.Setenv("TOKEND_OLD_MASTER_KEY", string(old))
	f.must("", "key", "reseal", "--master-key-file", newFile)
	os.Unsetenv("TOKEND_OLD_MASTER_KEY")
	wantSealedUnder(t, newVault, storedKeys(t, f.store()))
	// key rotate with the new key seals the new key under it.
	f.must("", "key", "rotate", "--master-key-file", newFile)
	wantSealedUnder(t, newVault, storedKeys(t, f.store()))

	// Back to the clear, only when asked for.
	f.must("", "key", "reseal", "--old-master-key-file", newFile, "--remove-master-key")
	wantSealedUnder(t, nil, storedKeys(t, f.store()))

	events := decodeOne[[]map[string]any](t, f.must("", "audit", "list", "--json"))
	var details []string
	for _, e := range events {
		if e["event"] == "key.resealed" {
			details = append(details, e["detail"].(string))
		}
	}
	if want := "count=2 to=master_key,count=0 to=master_key,count=2 to=master_key,count=3 to=clear"; strings.Join(details, ",") != want {
		t.Errorf("key.resealed events %q, want %q", details, want)
	}
}

// A store sealed under a passphrase (older versions took one) moves to a
// strong key; the passphrase itself is refused everywhere else.
func TestKeyResealFromPassphrase(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	passFile, passVault := masterKeyFile(t, dir, "pass.key", "correct horse battery staple 123\n")
	newFile, newVault := newMasterKey(t, dir, "new.key")
	now := time.Now()
	if _, err := grant.AddKey(context.Background(), f.store(), passVault, "ES256", now, now, ""); err != nil {
		t.Fatal(err)
	}
	wantSealedUnder(t, passVault, storedKeys(t, f.store()))

	_, _, err := f.run("", "key", "rotate", "--master-key-file", passFile)
	if err == nil || !strings.Contains(err.Error(), "32 random bytes") {
		t.Fatalf("key rotate with a passphrase: %v", err)
	}
	f.must("", "key", "reseal", "--old-master-key-file", passFile, "--master-key-file", newFile)
	wantSealedUnder(t, newVault, storedKeys(t, f.store()))
}

// serve refuses a weak master key before it opens (or creates) the store.
func TestServeRefusesWeakMasterKey(t *testing.T) {
	hermeticEnv(t)
	dir := t.TempDir()
	weak, _ := masterKeyFile(t, dir, "weak.key", "correct horse battery staple 123\n")
	db := filepath.Join(dir, "tokend.db")
	_, stderr, err := runCLI(t, "", "serve", "--addr", "127.0.0.1:0", "--db", "sqlite:"+db, "--master-key-file", weak)
	ue := wantUsageError(t, err)
	if !strings.Contains(ue.msg, "32 random bytes") || !strings.Contains(ue.msg, "tokend key reseal") {
		t.Errorf("serve with a passphrase: %q", ue.msg)
	}
	if strings.Contains(stderr+ue.msg, "correct horse") {
		t.Error("the master key was printed")
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Error("serve created the store before refusing the key")
	}
	t.Setenv("TOKEND_MASTER_KEY", "short")
	_, _, err = runCLI(t, "", "serve", "--addr", "127.0.0.1:0", "--db", "sqlite:"+db)
	wantUsageError(t, err)
}
