package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The store file holds the signing keys and, without a master key, the
// refresh-token key in the clear: whoever reads it can mint tokens. So a
// new file is made readable by its owner only, before SQLite opens it;
// SQLite's unix VFS gives the -wal and -shm files it creates the
// permissions of the main file, so they are private too.

// privateMode is the mode of a store file tokend creates.
const privateMode fs.FileMode = 0o600

// createPrivate creates the file at path with mode 0600 unless it exists
// (the umask cannot widen 0600). The directory must exist: tokend does
// not guess the permissions of a directory it would make.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, privateMode)
	switch {
	case err == nil:
		return f.Close()
	case errors.Is(err, fs.ErrExist):
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("open sqlite %s: directory %s does not exist: create it first (mode 0700: the store holds the signing keys)", path, filepath.Dir(path))
	default:
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
}

// LooseFile is a store file that users other than its owner may read or
// write.
type LooseFile struct {
	Path string
	Mode fs.FileMode
}

// LooseFiles lists the store's files (the database and its -wal and -shm
// sidecars) that group or others may read or write, as they were when the
// store was opened. tokend does not change the modes of existing files
// itself (a backup group may rely on them); the caller warns.
func (s *Store) LooseFiles() []LooseFile { return s.loose }

// looseFiles checks the modes of the database file at path and its sidecars.
func looseFiles(path string) []LooseFile {
	var out []LooseFile
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			continue // a sidecar that does not exist (yet)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			out = append(out, LooseFile{Path: p, Mode: fi.Mode().Perm()})
		}
	}
	return out
}
