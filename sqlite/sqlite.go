// Package sqlite is the embedded store: one SQLite file in WAL mode, with its
// migrations embedded and applied at open. Writes go through a single
// connection (SQLite has one writer anyway, and this keeps BUSY errors away);
// reads use a small pool of their own.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tokend/tokend"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a tokend.Store on one SQLite file.
type Store struct {
	w *sql.DB // one connection: every write
	r *sql.DB // reads

	// Prepared statements of the read and write pools, by query text:
	// the hot paths (token checks, refreshes) skip SQLite's parser.
	rStmts, wStmts sync.Map

	loose []LooseFile // files others may read, found at open
}

// prepared returns db's prepared statement for query, preparing it once.
func prepared(ctx context.Context, db *sql.DB, cache *sync.Map, query string) (*sql.Stmt, error) {
	if st, ok := cache.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if old, loaded := cache.LoadOrStore(query, st); loaded {
		st.Close()
		return old.(*sql.Stmt), nil
	}
	return st, nil
}

// row runs a read query for one row through a prepared statement.
func (s *Store) row(ctx context.Context, query string, args ...any) rowScanner {
	st, err := prepared(ctx, s.r, &s.rStmts, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// exec runs a write statement through a prepared statement.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := prepared(ctx, s.w, &s.wStmts, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

type rowScanner interface{ Scan(...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

var _ tokend.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and applies any
// pending migrations. A new file is created with mode 0600 (files.go); the
// directory must exist. LooseFiles then lists existing files that others
// may read.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("open sqlite: empty path")
	}
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(" + synchronous(opts) + ")", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s := &Store{w: w, r: r}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// After the migrations, so that the -wal and -shm files exist.
	s.loose = looseFiles(path)
	return s, nil
}

// migrate applies the embedded migrations that the file lacks, each in its
// own immediate transaction that first re-reads the schema version, so that
// two processes opening a new file at once (the CLI and a server) never
// both apply one.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	for i, name := range names {
		// Processes opening a new file at once can find it locked while
		// another turns it into a WAL database, which SQLite reports at
		// once, without its busy timeout: try again for a while.
		deadline := time.Now().Add(10 * time.Second)
		for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
			err := s.applyMigration(ctx, i+1, name, len(names))
			if err == nil {
				break
			}
			if !busy(err) || time.Now().After(deadline) {
				return err
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(wait):
			}
		}
	}
	return nil
}

// busy reports whether err is SQLite's "database is locked".
func busy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

func (s *Store) applyMigration(ctx context.Context, version int, name string, latest int) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if current > latest {
		return fmt.Errorf("migrate: %w", newerSchema(current, latest))
	}
	if current >= version {
		return nil
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, version); err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	return nil
}

// Close closes the prepared statements and both pools.
func (s *Store) Close() error {
	for _, m := range []*sync.Map{&s.rStmts, &s.wStmts} {
		m.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	}
	return errors.Join(s.w.Close(), s.r.Close())
}

// Ping checks that the file can be read.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

func unavailable(op string, err error) error {
	return &tokend.Error{Code: tokend.EUNAVAILABLE, Message: "store unavailable", Err: fmt.Errorf("%s: %w", op, err)}
}

// micro turns a time into unix microseconds, 0 for the zero time.
func micro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicro(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func joinList(l []string) string { return strings.Join(l, " ") }

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// wrap turns a driver error into an *tokend.Error where it has a meaning.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &tokend.Error{Code: tokend.ENOTFOUND, Message: "not found", Err: fmt.Errorf("%s: %w", op, err)}
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &tokend.Error{Code: tokend.ECONFLICT, Message: "already exists", Err: fmt.Errorf("%s: %w", op, err)}
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func notFound(op string) error {
	return &tokend.Error{Code: tokend.ENOTFOUND, Message: "not found", Err: errors.New(op)}
}

// inTx runs fn in one write transaction.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrap(op, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return wrap(op, tx.Commit())
}

func recordChange(ctx context.Context, tx *sql.Tx, kind, ref string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO changes (kind, ref, at) VALUES (?, ?, ?)`, kind, ref, time.Now().UnixMicro())
	return wrap("record change", err)
}

// execChanged runs one statement that must touch a row, and records the change.
func (s *Store) execChanged(ctx context.Context, op, kind, ref, query string, args ...any) error {
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return wrap(op, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound(op)
		}
		return recordChange(ctx, tx, kind, ref)
	})
}
