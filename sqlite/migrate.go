package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/tokend/tokend"
)

// Migrations returns the names of the migrations this build knows, in the
// order they apply: schema version i is what the first i of them make.
func Migrations() []string {
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	sort.Strings(names)
	for i, n := range names {
		names[i] = path.Base(n)
	}
	return names
}

// SchemaVersion is the schema version this build's migrations bring a
// database to.
func SchemaVersion() int { return len(Migrations()) }

// fileURI is the URI SQLite opens for the file at p with the parameters q;
// the characters that would end the path are escaped.
func fileURI(p string, q url.Values) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
	return "file:" + esc + "?" + q.Encode()
}

// openReadOnly opens the file at p for reading only; it never creates it.
func openReadOnly(p string) (*sql.DB, error) {
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", fileURI(p, q))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// schemaVersion reads the schema version of an open database: 0 when no
// migration ever ran on it.
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).Scan(&n); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	var v int
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}

// Version reads the schema version of the database file at p without
// changing the file (0: no migration ran on it). It fails with an error
// that wraps fs.ErrNotExist when there is no file.
func Version(ctx context.Context, p string) (int, error) {
	db, err := openReadOnly(p)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("read schema version of %s: %w", p, err)
	}
	return v, nil
}

// Migrate brings the database file at p to SchemaVersion, one migration per
// transaction, as Open would, and returns the names of the migrations it
// applied. progress, if not nil, is called before each migration with how
// many are done and how many there are, and once at the end. A missing file
// is created by Open (all migrations at once). A database that a newer
// tokend migrated is refused with a *tokend.SchemaTooNewError.
func Migrate(ctx context.Context, p string, progress func(done, total int, name string), opts ...Option) ([]string, error) {
	if progress == nil {
		progress = func(int, int, string) {}
	}
	all := Migrations()
	current, err := Version(ctx, p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		progress(0, len(all), "create "+p)
		s, err := Open(ctx, p, opts...)
		if err != nil {
			return nil, err
		}
		progress(len(all), len(all), "")
		return all, s.Close()
	case err != nil:
		return nil, err
	case current > len(all):
		return nil, fmt.Errorf("migrate: %w", newerSchema(current, len(all)))
	}
	pending := all[current:]
	if len(pending) == 0 {
		return nil, nil
	}
	q := url.Values{}
	for _, pr := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(" + synchronous(opts) + ")", "foreign_keys(1)"} {
		q.Add("_pragma", pr)
	}
	q.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", fileURI(p, q))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", p, err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	s := &Store{w: w, r: w}
	for i, name := range pending {
		progress(i, len(pending), name)
		if err := s.applyMigration(ctx, current+i+1, "migrations/"+name, len(all)); err != nil {
			return pending[:i], err
		}
	}
	progress(len(pending), len(pending), "")
	return pending, nil
}

func newerSchema(database, known int) error {
	return &tokend.SchemaTooNewError{Database: database, Known: known}
}
