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

// Users.

const userColumns = `id, username, password_hash, roles, client_id, disabled, created_at, last_login_at, last_refresh_at, tokens_not_before, claims, version`

func scanUser(row scanner) (*tokend.User, error) {
	var u tokend.User
	var login, refresh, notBefore pgtype.Timestamptz
	var claims []byte
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Roles, &u.ClientID, &u.Disabled, &u.CreatedAt, &login, &refresh, &notBefore, &claims, &u.Version); err != nil {
		return nil, err
	}
	var err error
	if u.Claims, err = tokend.DecodeClaims(claims); err != nil {
		return nil, fmt.Errorf("claims of user %s: %w", u.ID, err)
	}
	u.Roles = fromList(u.Roles)
	u.CreatedAt, u.LastLoginAt, u.LastRefreshAt = u.CreatedAt.UTC(), fromOpt(login), fromOpt(refresh)
	u.TokensNotBefore = fromOpt(notBefore)
	return &u, nil
}

// insertUser is the one INSERT of a user row.
// A new user is at version 1.
func insertUser(ctx context.Context, tx pgx.Tx, u *tokend.User) error {
	claims, err := tokend.EncodeClaims(u.Claims)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1)`,
		u.ID, u.Username, u.PasswordHash, list(u.Roles), u.ClientID, u.Disabled,
		u.CreatedAt, optTime(u.LastLoginAt), optTime(u.LastRefreshAt), optTime(u.TokensNotBefore), claims)
	if err == nil {
		u.Version = 1
	}
	return err
}

func (s *Store) CreateUser(ctx context.Context, u *tokend.User) error {
	return s.inTx(ctx, "create user", func(ctx context.Context, tx pgx.Tx) error {
		if err := insertUser(ctx, tx, u); err != nil {
			return err
		}
		if u.ClientID != "" {
			if _, err := bumpEndUsers(ctx, tx, u.ClientID, 0); err != nil {
				return err
			}
		}
		return s.recordChanges(ctx, tx, tokend.Change{Kind: tokend.ChangeUser, Ref: u.ID})
	})
}

func (s *Store) UserByID(ctx context.Context, id string) (*tokend.User, error) {
	if unstorable(id) {
		return nil, notFound("user by id")
	}
	return one(ctx, s, "user by id", scanUser, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
}

func (s *Store) UserByName(ctx context.Context, username string) (*tokend.User, error) {
	if unstorable(username) {
		return nil, notFound("user by name")
	}
	return one(ctx, s, "user by name", scanUser, `SELECT `+userColumns+` FROM users WHERE client_id = '' AND username = $1`, username)
}

func (s *Store) ListUsers(ctx context.Context, f tokend.UserFilter) ([]*tokend.User, error) {
	if unstorable(f.ClientID) {
		return nil, nil
	}
	return all(ctx, s, "list users", scanUser, `SELECT `+userColumns+` FROM users WHERE client_id = $1 ORDER BY username`, f.ClientID)
}

func (s *Store) SetUserPassword(ctx context.Context, id, hash string) error {
	if unstorable(id) {
		return notFound("set user password")
	}
	return s.execChanged(ctx, "set user password", tokend.ChangeUser, id,
		`UPDATE users SET password_hash = $1, version = version + 1 WHERE id = $2`, hash, id)
}

func (s *Store) DisableUser(ctx context.Context, id string, at time.Time) error {
	const op = "disable user"
	if unstorable(id) {
		return notFound(op)
	}
	return s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET disabled = true, version = version + 1 WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound(op)
		}
		sessions, err := revokeUserSessions(ctx, tx, id, at, "user disabled")
		if err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, append([]tokend.Change{{Kind: tokend.ChangeUser, Ref: id}}, sessions...)...)
	})
}

func (s *Store) SetUserPasswordEndSessions(ctx context.Context, id, hash string, at time.Time) error {
	const op = "set user password"
	if unstorable(id) {
		return notFound(op)
	}
	return s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, tokens_not_before = $3, version = version + 1 WHERE id = $1`, id, hash, optTime(at))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound(op)
		}
		sessions, err := revokeUserSessions(ctx, tx, id, at, "password changed")
		if err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, append([]tokend.Change{{Kind: tokend.ChangeUser, Ref: id}}, sessions...)...)
	})
}

func (s *Store) TouchLogin(ctx context.Context, userID string, at time.Time) error {
	if unstorable(userID) {
		return nil
	}
	_, err := s.exec(ctx, "touch login", `UPDATE users SET last_login_at = $1, version = version + 1 WHERE id = $2`, optTime(at), userID)
	return err
}

func (s *Store) TouchRefresh(ctx context.Context, userID string, at time.Time) error {
	if unstorable(userID) {
		return nil
	}
	_, err := s.exec(ctx, "touch refresh", `UPDATE users SET last_refresh_at = $1, version = version + 1 WHERE id = $2`, optTime(at), userID)
	return err
}

// Clients.

const clientColumns = `id, name, secret_hash, prev_secret_hash, prev_secret_until, public, grants, scopes, mode, access_ttl_ms, disabled, created_at, version`

func scanClient(row scanner) (*tokend.ClientApp, error) {
	var c tokend.ClientApp
	var prevUntil pgtype.Timestamptz
	var ttl int64
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.PrevSecretHash, &prevUntil, &c.Public,
		&c.Grants, &c.Scopes, &c.Mode, &ttl, &c.Disabled, &c.CreatedAt, &c.Version); err != nil {
		return nil, err
	}
	c.PrevSecretUntil, c.CreatedAt = fromOpt(prevUntil), c.CreatedAt.UTC()
	c.Grants, c.Scopes = fromList(c.Grants), fromList(c.Scopes)
	c.AccessTTL = time.Duration(ttl) * time.Millisecond
	return &c, nil
}

func (s *Store) CreateClient(ctx context.Context, c *tokend.ClientApp) error {
	return s.inTx(ctx, "create client", func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)`,
			c.ID, c.Name, c.SecretHash, c.PrevSecretHash, optTime(c.PrevSecretUntil), c.Public,
			list(c.Grants), list(c.Scopes), c.Mode, c.AccessTTL.Milliseconds(), c.Disabled, c.CreatedAt)
		if err != nil {
			return err
		}
		c.Version = 1
		return s.recordChanges(ctx, tx, tokend.Change{Kind: tokend.ChangeClient, Ref: c.ID})
	})
}

func (s *Store) ClientByID(ctx context.Context, id string) (*tokend.ClientApp, error) {
	if unstorable(id) {
		return nil, notFound("client by id")
	}
	return one(ctx, s, "client by id", scanClient, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id)
}

func (s *Store) ListClients(ctx context.Context) ([]*tokend.ClientApp, error) {
	return all(ctx, s, "list clients", scanClient, `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`)
}

func (s *Store) SetClientSecret(ctx context.Context, id string, hash []byte, prevUntil time.Time) error {
	if unstorable(id) {
		return notFound("set client secret")
	}
	// SET sees the row as it was: prev_secret_hash gets the old secret_hash.
	return s.execChanged(ctx, "set client secret", tokend.ChangeClient, id,
		`UPDATE clients SET prev_secret_hash = CASE WHEN $1::boolean THEN secret_hash END,
			prev_secret_until = $2, secret_hash = $3, version = version + 1 WHERE id = $4`,
		!prevUntil.IsZero(), optTime(prevUntil), hash, id)
}

func (s *Store) DisableClient(ctx context.Context, id string) error {
	if unstorable(id) {
		return notFound("disable client")
	}
	return s.execChanged(ctx, "disable client", tokend.ChangeClient, id,
		`UPDATE clients SET disabled = true, version = version + 1 WHERE id = $1`, id)
}

// Keys.

// AddKey reads the newest key of the algorithm and inserts k after it. Two
// concurrent rotations after the same key both read it, but both then insert
// the same (alg, seq): the unique index makes the second wait for the first
// and fail once it commits, which is the lost compare-and-swap.
func (s *Store) AddKey(ctx context.Context, k *tokend.SigningKey, afterKid string) error {
	const op = "add key"
	lost := &tokend.Error{Code: tokend.ECONFLICT, Message: "another process rotated the key first"}
	return s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		var latest string
		var seq int64
		err := tx.QueryRow(ctx, `SELECT kid, seq FROM signing_keys WHERE alg = $1 ORDER BY seq DESC LIMIT 1`, k.Alg).Scan(&latest, &seq)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if latest != afterKid {
			return lost
		}
		_, err = tx.Exec(ctx, `INSERT INTO signing_keys (kid, alg, private_key, created_at, activates_at, revoked_at, seq)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.ID, k.Alg, k.PrivateKey, k.CreatedAt, k.ActivatesAt, optTime(k.RevokedAt), seq+1)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == uniqueViolation && pe.ConstraintName == "signing_keys_alg_seq" {
			lost.Err = err
			return lost
		}
		if err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, tokend.Change{Kind: tokend.ChangeKey, Ref: k.ID})
	})
}

func scanKey(row scanner) (*tokend.SigningKey, error) {
	var k tokend.SigningKey
	var revoked pgtype.Timestamptz
	if err := row.Scan(&k.ID, &k.Alg, &k.PrivateKey, &k.CreatedAt, &k.ActivatesAt, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt, k.ActivatesAt, k.RevokedAt = k.CreatedAt.UTC(), k.ActivatesAt.UTC(), fromOpt(revoked)
	return &k, nil
}

func (s *Store) ListKeys(ctx context.Context) ([]*tokend.SigningKey, error) {
	return all(ctx, s, "list keys", scanKey,
		`SELECT kid, alg, private_key, created_at, activates_at, revoked_at FROM signing_keys ORDER BY alg, seq`)
}

func (s *Store) RevokeKey(ctx context.Context, kid string, at time.Time) error {
	if unstorable(kid) {
		return notFound("revoke key")
	}
	return s.execChanged(ctx, "revoke key", tokend.ChangeKey, kid,
		`UPDATE signing_keys SET revoked_at = $1 WHERE kid = $2 AND revoked_at IS NULL`, optTime(at), kid)
}

// Sessions.

const sessionColumns = `id, user_id, client_id, scope, dialect, counter, rotated_at, created_at, expires_at, revoked_at, revoke_reason`

func scanSession(row scanner) (*tokend.Session, error) {
	var se tokend.Session
	var revoked pgtype.Timestamptz
	if err := row.Scan(&se.ID, &se.UserID, &se.ClientID, &se.Scope, &se.Dialect, &se.Counter,
		&se.RotatedAt, &se.CreatedAt, &se.ExpiresAt, &revoked, &se.RevokeReason); err != nil {
		return nil, err
	}
	se.RotatedAt, se.CreatedAt, se.ExpiresAt = se.RotatedAt.UTC(), se.CreatedAt.UTC(), se.ExpiresAt.UTC()
	se.RevokedAt = fromOpt(revoked)
	return &se, nil
}

func (s *Store) CreateSession(ctx context.Context, se *tokend.Session) error {
	_, err := s.exec(ctx, "create session", `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		se.ID, se.UserID, se.ClientID, se.Scope, se.Dialect, se.Counter, se.RotatedAt,
		se.CreatedAt, se.ExpiresAt, optTime(se.RevokedAt), se.RevokeReason)
	return err
}

func (s *Store) SessionByID(ctx context.Context, id string) (*tokend.Session, error) {
	if unstorable(id) {
		return nil, notFound("session by id")
	}
	return one(ctx, s, "session by id", scanSession, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id)
}

// AdvanceSession is one conditional UPDATE, never a SELECT ... FOR UPDATE
// and a write: concurrent refreshes of one session each wait only for the
// row lock of the single statement before them, and each re-checks the
// counter once it has the row, so exactly one of them moves it.
func (s *Store) AdvanceSession(ctx context.Context, id string, from int64, at time.Time) (bool, error) {
	if unstorable(id) {
		return false, nil
	}
	n, err := s.exec(ctx, "advance session", `UPDATE sessions SET counter = counter + 1, rotated_at = $1
		WHERE id = $2 AND counter = $3 AND revoked_at IS NULL AND expires_at > $1`, at, id, from)
	return n == 1, err
}

// RevokeSession is idempotent: an unknown or already revoked session is no
// error, and keeps its first revocation.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, reason string) error {
	if unstorable(id) {
		return nil
	}
	return s.inTx(ctx, "revoke session", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoke_reason = $2 WHERE id = $3 AND revoked_at IS NULL`,
			optTime(at), reason, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		return s.recordChanges(ctx, tx, tokend.Change{Kind: tokend.ChangeSession, Ref: id})
	})
}

// Revoked access tokens.

func (s *Store) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return s.inTx(ctx, "revoke token", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING`, jti, expiresAt)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return s.recordChanges(ctx, tx, tokend.Change{Kind: tokend.ChangeToken, Ref: jti})
	})
}

func (s *Store) Revoked(ctx context.Context, now time.Time) (tokens, sessions []string, err error) {
	str := func(row scanner) (string, error) {
		var v string
		err := row.Scan(&v)
		return v, err
	}
	if tokens, err = all(ctx, s, "revoked tokens", str, `SELECT jti FROM revoked_tokens WHERE expires_at > $1`, now); err != nil {
		return nil, nil, err
	}
	// Every revoked session still stored, expired or not: its access
	// tokens may outlive it (PurgeRevokedSessions bounds the set).
	if sessions, err = all(ctx, s, "revoked sessions", str, `SELECT id FROM sessions WHERE revoked_at IS NOT NULL`); err != nil {
		return nil, nil, err
	}
	return tokens, sessions, nil
}

// PurgeRevokedSessions deletes in batches, as Purge does.
func (s *Store) PurgeRevokedSessions(ctx context.Context, expiredBefore time.Time) error {
	for {
		n, err := s.exec(ctx, "purge revoked sessions", `DELETE FROM sessions WHERE id IN
			(SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND expires_at < $1 LIMIT $2)`, expiredBefore, purgeBatch)
		if err != nil || n < purgeBatch {
			return err
		}
	}
}

// Settings, changes, housekeeping.

func scanBytes(row scanner) ([]byte, error) {
	var v []byte
	err := row.Scan(&v)
	return v, err
}

// Secret calls gen only when the secret does not exist yet; of several
// processes that create it at once, the first insert wins (the others wait
// for it on the primary key, then insert nothing) and all read its value.
func (s *Store) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	const query = `SELECT value FROM settings WHERE name = $1`
	v, err := one(ctx, s, "read secret", scanBytes, query, name)
	if tokend.ErrorCode(err) != tokend.ENOTFOUND {
		return v, err
	}
	fresh, err := gen()
	if err != nil {
		return nil, fmt.Errorf("generate secret %s: %w", name, err)
	}
	if _, err := s.exec(ctx, "create secret", `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
		return nil, err
	}
	// A new statement, so a new snapshot: it sees whichever insert won.
	return one(ctx, s, "read secret", scanBytes, query, name)
}

func (s *Store) Changes(ctx context.Context, after int64) ([]tokend.Change, int64, error) {
	out, err := all(ctx, s, "changes", func(row scanner) (tokend.Change, error) {
		var c tokend.Change
		err := row.Scan(&c.Seq, &c.Kind, &c.Ref)
		return c, err
	}, `SELECT seq, kind, ref FROM changes WHERE seq > $1 ORDER BY seq LIMIT 10000`, after)
	if err != nil {
		return nil, after, err
	}
	latest := after
	if len(out) > 0 {
		latest = out[len(out)-1].Seq
	} else {
		out = nil
	}
	return out, latest, nil
}

// Purge deletes in batches, each a statement of its own, so that a large
// backlog neither runs into the statement timeout nor locks many rows at
// once. The newest change always stays, so that the latest seq never goes
// backwards.
func (s *Store) Purge(ctx context.Context, now time.Time, keepChanges time.Duration) error {
	for _, q := range []struct {
		op, query string
		before    time.Time
	}{
		{"purge sessions", `DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < $1 AND revoked_at IS NULL LIMIT $2)`, now},
		{"purge revoked tokens", `DELETE FROM revoked_tokens WHERE jti IN (SELECT jti FROM revoked_tokens WHERE expires_at < $1 LIMIT $2)`, now},
		{"purge failures", `DELETE FROM failures WHERE key IN (SELECT key FROM failures WHERE last < $1 LIMIT $2)`, now.Add(-24 * time.Hour)},
		{"purge changes", `DELETE FROM changes WHERE seq IN (SELECT seq FROM changes
			WHERE at < $1 AND seq < (SELECT MAX(seq) FROM changes) LIMIT $2)`, now.Add(-keepChanges)},
	} {
		for {
			n, err := s.exec(ctx, q.op, q.query, q.before, purgeBatch)
			if err != nil {
				return err
			}
			if n < purgeBatch {
				break
			}
		}
	}
	return nil
}

// Listen calls onChange for every notification of a change recorded in this
// store's schema, by any process (NotifyChannel), and also each time it has
// started listening, since notifications sent while no connection listened
// are lost: the caller then reads Changes, and misses nothing. It holds a
// connection of its own, outside the pool; when that connection fails it
// reconnects, with a growing delay, until ctx ends, and then returns
// ctx.Err(). onChange runs on Listen's goroutine and should return quickly.
func (s *Store) Listen(ctx context.Context, onChange func()) error {
	const minDelay, maxDelay = 100 * time.Millisecond, 10 * time.Second
	delay := minDelay
	for {
		listened, err := s.listen(ctx, onChange)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if listened {
			delay = minDelay
		}
		if s.Logger != nil {
			s.Logger.Warn("listen for store changes", "err", err, "retry_in", delay)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, maxDelay)
	}
}

// listen listens on one connection until it fails or ctx ends; it reports
// whether it got as far as listening.
func (s *Store) listen(ctx context.Context, onChange func()) (listened bool, err error) {
	// A quiet connection is checked this often, so that one a network has
	// silently dropped is noticed and replaced.
	const idleCheck = 30 * time.Second
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return false, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+NotifyChannel); err != nil {
		return false, err
	}
	onChange()
	for {
		wait, cancel := context.WithTimeout(ctx, idleCheck)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			if n.Payload == s.schema || n.Payload == "" {
				onChange()
			}
		case ctx.Err() != nil:
			return true, ctx.Err()
		case pgconn.Timeout(err):
			ping, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(ping)
			cancel()
			if err != nil {
				return true, err
			}
		default:
			return true, err
		}
	}
}

// Failure counters.

func scanFailures(row scanner) (tokend.FailureCount, error) {
	var f tokend.FailureCount
	err := row.Scan(&f.Count, &f.Since, &f.Last)
	f.Since, f.Last = f.Since.UTC(), f.Last.UTC()
	return f, err
}

// RecordFailure is one upsert, atomic under concurrent callers.
func (s *Store) RecordFailure(ctx context.Context, key string, at time.Time, window time.Duration) (tokend.FailureCount, error) {
	if unstorable(key) {
		return tokend.FailureCount{}, &tokend.Error{Code: tokend.EINVALID, Message: "unstorable key"}
	}
	return one(ctx, s, "record failure", scanFailures, `INSERT INTO failures (key, count, since, last) VALUES ($1, 1, $2, $2)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN failures.since < $3 THEN 1 ELSE failures.count + 1 END,
			since = CASE WHEN failures.since < $3 THEN excluded.since ELSE failures.since END,
			last = excluded.last
		RETURNING count, since, last`, key, at, at.Add(-window))
}

func (s *Store) Failures(ctx context.Context, key string) (tokend.FailureCount, error) {
	if unstorable(key) {
		return tokend.FailureCount{}, nil
	}
	f, err := one(ctx, s, "failures", scanFailures, `SELECT count, since, last FROM failures WHERE key = $1`, key)
	if tokend.ErrorCode(err) == tokend.ENOTFOUND {
		return tokend.FailureCount{}, nil
	}
	return f, err
}

func (s *Store) ResetFailures(ctx context.Context, key string) error {
	if unstorable(key) {
		return nil
	}
	_, err := s.exec(ctx, "reset failures", `DELETE FROM failures WHERE key = $1`, key)
	return err
}
