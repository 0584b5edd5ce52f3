package sqlite_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/sqlite"
)

// withUmask sets the process umask for the test (the usual 022 lets a
// plain create make files anyone can read).
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return fi.Mode().Perm()
}

// A new store's file and its WAL sidecars are private to their owner,
// whatever the umask: they hold the signing keys.
func TestNewStoreFilesArePrivate(t *testing.T) {
	withUmask(t, 0o022)
	path := filepath.Join(t.TempDir(), "tokend.db")
	s := open(t, path)
	// A write, so that SQLite has made the -wal and -shm files.
	u := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: "alice", CreatedAt: time.Now()}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if got := mode(t, p); got != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(p), got)
		}
	}
	if l := s.LooseFiles(); len(l) != 0 {
		t.Errorf("a new store reports loose files %v", l)
	}
}

// An existing file that others may read is left as it is, and reported,
// with the sidecars SQLite made after its mode.
func TestLooseFilesReported(t *testing.T) {
	withUmask(t, 0o022)
	path := filepath.Join(t.TempDir(), "tokend.db")
	s := open(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	got := map[string]fs.FileMode{}
	for _, l := range s.LooseFiles() {
		got[filepath.Base(l.Path)] = l.Mode
	}
	for _, name := range []string{"tokend.db", "tokend.db-wal", "tokend.db-shm"} {
		if got[name] != 0o644 {
			t.Errorf("loose files %v do not report %s as 644", got, name)
		}
	}
	if mode(t, path) != 0o644 {
		t.Errorf("Open changed the mode of an existing file to %o", mode(t, path))
	}

	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if l := open(t, path).LooseFiles(); len(l) != 0 {
		t.Errorf("after chmod 600, loose files %v", l)
	}
}

// A path in a directory that does not exist is a clear error, and no
// directory is made with a mode tokend would have to guess.
func TestOpenMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	s, err := sqlite.Open(t.Context(), filepath.Join(dir, "tokend.db"))
	if err == nil {
		s.Close()
		t.Fatal("Open in a missing directory succeeded")
	}
	if !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not say that %s does not exist", err, dir)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Open made the directory: %v", err)
	}
}
