package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestStoreFilesPrivate: a store tokend creates is 0600 with the usual
// umask, and a store file others may read gets a warning from serve and
// from the CLI (its mode left alone).
func TestStoreFilesPrivate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	hermeticEnv(t)
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	const warning = "store file is open to other users"

	s := launchServer(t, dir)
	s.waitUp(t)
	provision(t, s) // writes, so the -wal and -shm files exist
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	s.stop(t)
	if strings.Contains(s.Logs(), warning) {
		t.Errorf("a new store got a warning:\n%s", s.Logs())
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s = launchServer(t, dir)
	s.waitUp(t)
	s.stop(t)
	var line string
	for _, l := range strings.Split(s.Logs(), "\n") {
		if strings.Contains(l, warning) && strings.Contains(l, "path="+path+" ") {
			line = l
		}
	}
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "mode=-rw-r--r--") {
		t.Errorf("serve did not warn about %s (0644):\n%s", path, s.Logs())
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("serve changed the file's mode to %o", fi.Mode().Perm())
	}

	_, stderr, err := runCLI(t, "", "user", "list", "--db", "sqlite:"+path)
	if err != nil || !strings.Contains(stderr, warning) || !strings.Contains(stderr, path) {
		t.Errorf("the CLI on a 0644 store: %v, stderr %q", err, stderr)
	}
}
