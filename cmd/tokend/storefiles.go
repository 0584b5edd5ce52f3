package main

import (
	"log/slog"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/sqlite"
)

// warnLooseFiles logs each file of a SQLite store that users other than
// its owner may read or write: the file holds the signing keys (and,
// without a master key, in the clear), so such a user can mint tokens.
// tokend creates its files 0600 but leaves the mode of existing ones alone.
func warnLooseFiles(log *slog.Logger, store tokend.Store) {
	s, ok := store.(*sqlite.Store)
	if !ok {
		return
	}
	for _, f := range s.LooseFiles() {
		log.Warn("store file is open to other users: it holds the signing keys; chmod 600 it", "path", f.Path, "mode", f.Mode.String())
	}
}
