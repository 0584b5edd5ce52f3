// Package postgres is the store that several tokend nodes share: a
// PostgreSQL database reached through a pgx connection pool, with its
// migrations embedded and applied at open.
//
// It keeps the semantics of the SQLite store (the storetest suite checks
// both) and adds what many nodes need: migrations that several nodes may
// start at once, a change log whose order is the commit order, a NOTIFY at
// every recorded change so that other nodes need not wait for their poll
// (see Listen), timeouts on every statement and lock wait so that a request
// never hangs on the database, and EUNAVAILABLE when the database cannot be
// reached, so that callers answer 503 rather than 500.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"runtime"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokend/tokend"
)

//go:embed migrations/*.sql
var migrations embed.FS

// NotifyChannel is the channel on which every transaction that records a
// change sends a notification (its payload is the schema of the store).
const NotifyChannel = "tokend_changes"

// Session settings that every pooled connection gets, unless the DSN sets
// them: a statement or a lock wait that takes longer fails (with
// EUNAVAILABLE) instead of holding a request and a connection, and a
// transaction left idle cannot hold its locks for long.
var runtimeDefaults = map[string]string{
	"statement_timeout":                   "5s",
	"lock_timeout":                        "2s",
	"idle_in_transaction_session_timeout": "15s",
	"application_name":                    "tokend",
}

const (
	// connectTimeout bounds a new connection when the DSN sets no
	// connect_timeout, so that an unreachable host answers within seconds.
	connectTimeout = 5 * time.Second
	// opTimeout bounds one call (waiting for a pooled connection, then its
	// statements) when the caller's context has no earlier deadline.
	opTimeout = 10 * time.Second
	// pingTimeout bounds Ping when the caller's context has no earlier deadline.
	pingTimeout = 3 * time.Second
	// purgeBatch is how many rows one statement of Purge deletes, so that a
	// large backlog never runs into the statement timeout.
	purgeBatch = 5000
)

// defaultMaxConns is the pool's size when the DSN does not set
// pool_max_conns: pgx's default (four, or one per core) leaves most of 64
// concurrent requests waiting for a connection while the few in use wait
// for their commit to reach the disk; with more connections in flight,
// PostgreSQL flushes many commits at once. Measured on two cores: refreshes
// 2,400/s with 4, 3,000 to 3,600/s with 16 (BENCHMARKS.md).
func defaultMaxConns() int32 {
	return int32(max(16, 4*runtime.GOMAXPROCS(0)))
}

// Store is a tokend.Store on a PostgreSQL database.
type Store struct {
	// Logger, when set before Listen is called, receives Listen's connection
	// errors; nil discards them.
	Logger *slog.Logger

	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig // for Listen's own connection
	schema  string          // where the tables are: the notification payload
	// changeLock is the key of the advisory lock that orders recorded changes.
	changeLock int64
}

var _ tokend.Store = (*Store)(nil)

// Open connects to the database that dsn names (a postgres:// URL or
// key=value pairs, as pgx reads them; parameters such as search_path are
// kept and set on every connection) and applies any pending migrations.
// It fails with EUNAVAILABLE when the database cannot be reached, and
// refuses a database whose schema is newer than this binary.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err) // pgx leaves the password out
	}
	for k, v := range runtimeDefaults {
		if _, set := cfg.ConnConfig.RuntimeParams[k]; !set {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns()
	}
	s := &Store{connCfg: cfg.ConnConfig.Copy()}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the embedded migrations that the database lacks, all in
// one transaction that first takes an advisory lock on the schema and only
// then reads schema_version: of several nodes starting at once, one
// migrates and the others wait, then find nothing left to do. Migrations
// may take long, so the transaction lifts the statement and lock timeouts;
// ctx bounds it.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	latest := len(names)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0`); err != nil {
			return err
		}
		var schema *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return err
		}
		if schema == nil {
			return errors.New("no schema to create the tables in: the search_path names no schema that exists")
		}
		s.schema = *schema
		s.changeLock = lockKey("tokend changes " + s.schema)
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("tokend migrate "+s.schema)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
			return fmt.Errorf("read version: %w", err)
		}
		if current > latest {
			return newerSchema(current, latest)
		}
		for v := current + 1; v <= latest; v++ {
			body, err := migrations.ReadFile(names[v-1])
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", names[v-1], err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, v); err != nil {
				return fmt.Errorf("%s: %w", names[v-1], err)
			}
		}
		return nil
	})
	return wrap("migrate", err)
}

// lockKey turns a name into the key of an advisory lock, so that
// deployments in different schemas of one database never wait on each other.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers, within ctx's deadline or a few
// seconds; it fails with EUNAVAILABLE.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Errors.

func unavailable(op string, err error) error {
	return &tokend.Error{Code: tokend.EUNAVAILABLE, Message: "store unavailable", Err: fmt.Errorf("%s: %w", op, err)}
}

func notFound(op string) error {
	return &tokend.Error{Code: tokend.ENOTFOUND, Message: "not found", Err: errors.New(op)}
}

// SQLSTATE codes (PostgreSQL, Appendix A) with a meaning for callers.
const (
	uniqueViolation         = "23505"
	characterNotInRepertory = "22021" // a NUL byte or invalid UTF-8 in text
	untranslatableCharacter = "22P05"
)

// unavailableState reports whether a server error means "retry later": the
// server is going away, starting, out of room or connections, or a
// statement or lock wait ran out of time.
func unavailableState(code string) bool {
	switch code {
	case "57014", // query_canceled: statement_timeout
		"55P03", // lock_not_available: lock_timeout
		"57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now: starting up
		"25006", // read_only_sql_transaction: a standby, after a failover
		"40001", // serialization_failure
		"40P01": // deadlock_detected
		return true
	}
	return strings.HasPrefix(code, "08") || // connection exception
		strings.HasPrefix(code, "53") // insufficient resources
}

// unreachable reports whether err means the database could not be reached
// or did not answer in time: a refused or broken connection, a timeout, a
// context that ended while waiting for a connection or an answer.
func unreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) ||
		pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed)
}

// wrap turns a driver error into a *tokend.Error where it has a meaning;
// an error that already is one passes unchanged.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var te *tokend.Error
	if errors.As(err, &te) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &tokend.Error{Code: tokend.ENOTFOUND, Message: "not found", Err: fmt.Errorf("%s: %w", op, err)}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == uniqueViolation:
			return &tokend.Error{Code: tokend.ECONFLICT, Message: "already exists", Err: fmt.Errorf("%s: %w", op, err)}
		case pe.Code == characterNotInRepertory, pe.Code == untranslatableCharacter:
			return &tokend.Error{Code: tokend.EINVALID, Message: "text the store cannot keep (a NUL byte or invalid UTF-8)", Err: fmt.Errorf("%s: %w", op, err)}
		case unavailableState(pe.Code):
			return unavailable(op, err)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	if unreachable(err) {
		return unavailable(op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// unstorable reports whether some key could never have been stored, since
// PostgreSQL text holds neither NUL bytes nor invalid UTF-8: a lookup by it
// finds nothing (SQLite would have stored it, and found nothing either).
func unstorable(keys ...string) bool {
	for _, k := range keys {
		if !utf8.ValidString(k) || strings.IndexByte(k, 0) >= 0 {
			return true
		}
	}
	return false
}

// Helpers every call goes through: each bounds its work by opTimeout, so
// that a request never waits for a connection or an answer for long.

func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, opTimeout)
}

// exec runs one statement and returns how many rows it touched.
func (s *Store) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return 0, wrap(op, err)
	}
	return tag.RowsAffected(), nil
}

type scanner interface{ Scan(dest ...any) error }

// one runs a query for one row and scans it; ENOTFOUND if there is none.
func one[T any](ctx context.Context, s *Store, op string, scan func(scanner) (T, error), query string, args ...any) (T, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	v, err := scan(s.pool.QueryRow(ctx, query, args...))
	return v, wrap(op, err)
}

// all runs a query and scans every row.
func all[T any](ctx context.Context, s *Store, op string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// inTx runs fn in one transaction, committed if fn returns nil.
func (s *Store) inTx(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	return wrap(op, pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(ctx, tx) }))
}

// recordChanges appends changes to the log and notifies NotifyChannel; the
// notification goes out when the transaction commits. Call it last in a
// transaction, after every row it changes: it takes the advisory lock that
// makes transactions that record changes commit one at a time, in the order
// of their seqs, so that a reader who has seen seq n has seen every change
// before n (without it, a transaction that drew seq 9 could commit after one
// that drew 10, and a node that had read up to 10 would never see 9). Taken
// after the row locks, it cannot close a deadlock.
func (s *Store) recordChanges(ctx context.Context, tx pgx.Tx, changes ...tokend.Change) error {
	kinds, refs := make([]string, len(changes)), make([]string, len(changes))
	for i, c := range changes {
		kinds[i], refs[i] = c.Kind, c.Ref
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, s.changeLock)
	b.Queue(`INSERT INTO changes (kind, ref) SELECT * FROM unnest($1::text[], $2::text[])`, kinds, refs)
	b.Queue(`SELECT pg_notify($1, current_schema())`, NotifyChannel)
	return tx.SendBatch(ctx, b).Close()
}

// execChanged runs one statement that must touch a row (ENOTFOUND if none),
// and records the change.
func (s *Store) execChanged(ctx context.Context, op, kind, ref, query string, args ...any) error {
	return s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, query, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound(op)
		}
		return s.recordChanges(ctx, tx, tokend.Change{Kind: kind, Ref: ref})
	})
}

// Conversions.

// optTime is a time that may be "never": NULL for the zero time.
func optTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func fromOpt(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// list is a list to store: text[] is NOT NULL, and pgx sends a nil slice as NULL.
func list(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// fromList returns nil for an empty list, as the SQLite store does.
func fromList(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}
