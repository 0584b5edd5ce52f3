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

// Users.

const userColumns = `id, username, password_hash, roles, client_id, disabled, created_at, last_login_at, last_refresh_at, tokens_not_before, claims, version`

func scanUser(row interface{ Scan(...any) error }) (*tokend.User, error) {
	var u tokend.User
	var roles string
	var disabled int
	var created, login, refresh, notBefore int64
	var claims string
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &roles, &u.ClientID, &disabled, &created, &login, &refresh, &notBefore, &claims, &u.Version); err != nil {
		return nil, err
	}
	var err error
	if u.Claims, err = tokend.DecodeClaims([]byte(claims)); err != nil {
		return nil, fmt.Errorf("claims of user %s: %w", u.ID, err)
	}
	u.Roles = splitList(roles)
	u.Disabled = disabled != 0
	u.CreatedAt, u.LastLoginAt, u.LastRefreshAt = fromMicro(created), fromMicro(login), fromMicro(refresh)
	u.TokensNotBefore = fromMicro(notBefore)
	return &u, nil
}

// insertUser is the one INSERT of a user row.
// A new user is at version 1.
func insertUser(ctx context.Context, tx *sql.Tx, u *tokend.User) error {
	claims, err := tokend.EncodeClaims(u.Claims)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
		u.ID, u.Username, u.PasswordHash, joinList(u.Roles), u.ClientID, b2i(u.Disabled),
		micro(u.CreatedAt), micro(u.LastLoginAt), micro(u.LastRefreshAt), micro(u.TokensNotBefore), string(claims))
	if err == nil {
		u.Version = 1
	}
	return err
}

func (s *Store) CreateUser(ctx context.Context, u *tokend.User) error {
	return s.inTx(ctx, "create user", func(tx *sql.Tx) error {
		if err := insertUser(ctx, tx, u); err != nil {
			return wrap("create user", err)
		}
		if u.ClientID != "" {
			if _, err := bumpEndUsers(ctx, tx, u.ClientID, 0); err != nil {
				return err
			}
		}
		return recordChange(ctx, tx, tokend.ChangeUser, u.ID)
	})
}

func (s *Store) UserByID(ctx context.Context, id string) (*tokend.User, error) {
	u, err := scanUser(s.row(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, wrap("user by id", err)
}

func (s *Store) UserByName(ctx context.Context, username string) (*tokend.User, error) {
	u, err := scanUser(s.row(ctx, `SELECT `+userColumns+` FROM users WHERE client_id = '' AND username = ?`, username))
	return u, wrap("user by name", err)
}

func (s *Store) ListUsers(ctx context.Context, f tokend.UserFilter) ([]*tokend.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE client_id = ? ORDER BY username`, f.ClientID)
	if err != nil {
		return nil, wrap("list users", err)
	}
	defer rows.Close()
	var out []*tokend.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap("list users", err)
		}
		out = append(out, u)
	}
	return out, wrap("list users", rows.Err())
}

func (s *Store) SetUserPassword(ctx context.Context, id, hash string) error {
	return s.execChanged(ctx, "set user password", tokend.ChangeUser, id,
		`UPDATE users SET password_hash = ?, version = version + 1 WHERE id = ?`, hash, id)
}

func (s *Store) DisableUser(ctx context.Context, id string, at time.Time) error {
	const op = "disable user"
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET disabled = 1, version = version + 1 WHERE id = ?`, id)
		if err != nil {
			return wrap(op, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound(op)
		}
		if err := recordChange(ctx, tx, tokend.ChangeUser, id); err != nil {
			return err
		}
		_, err = revokeUserSessions(ctx, tx, id, at, "user disabled")
		return err
	})
}

func (s *Store) SetUserPasswordEndSessions(ctx context.Context, id, hash string, at time.Time) error {
	const op = "set user password"
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, tokens_not_before = ?, version = version + 1 WHERE id = ?`, hash, micro(at), id)
		if err != nil {
			return wrap(op, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound(op)
		}
		if err := recordChange(ctx, tx, tokend.ChangeUser, id); err != nil {
			return err
		}
		_, err = revokeUserSessions(ctx, tx, id, at, "password changed")
		return err
	})
}

// revokeUserSessions revokes the user's live sessions in tx, recording a
// change for each, and returns how many.
func revokeUserSessions(ctx context.Context, tx *sql.Tx, userID string, at time.Time, reason string) (int, error) {
	const op = "revoke user sessions"
	rows, err := tx.QueryContext(ctx, `SELECT id FROM sessions WHERE user_id = ? AND revoked_at = 0`, userID)
	if err != nil {
		return 0, wrap(op, err)
	}
	var ids []string
	for rows.Next() {
		var sid string
		if err := rows.Scan(&sid); err != nil {
			rows.Close()
			return 0, wrap(op, err)
		}
		ids = append(ids, sid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, wrap(op, err)
	}
	for _, sid := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ?`, micro(at), reason, sid); err != nil {
			return 0, wrap(op, err)
		}
		if err := recordChange(ctx, tx, tokend.ChangeSession, sid); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

func (s *Store) TouchLogin(ctx context.Context, userID string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE users SET last_login_at = ?, version = version + 1 WHERE id = ?`, micro(at), userID)
	return wrap("touch login", err)
}

func (s *Store) TouchRefresh(ctx context.Context, userID string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE users SET last_refresh_at = ?, version = version + 1 WHERE id = ?`, micro(at), userID)
	return wrap("touch refresh", err)
}

// Clients.

const clientColumns = `id, name, secret_hash, prev_secret_hash, prev_secret_until, public, grants, scopes, mode, access_ttl_ms, disabled, created_at, version`

func scanClient(row interface{ Scan(...any) error }) (*tokend.ClientApp, error) {
	var c tokend.ClientApp
	var prevUntil, ttl, created int64
	var public, disabled int
	var grants, scopes string
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.PrevSecretHash, &prevUntil, &public, &grants, &scopes, &c.Mode, &ttl, &disabled, &created, &c.Version); err != nil {
		return nil, err
	}
	c.PrevSecretUntil, c.CreatedAt = fromMicro(prevUntil), fromMicro(created)
	c.Public, c.Disabled = public != 0, disabled != 0
	c.Grants, c.Scopes = splitList(grants), splitList(scopes)
	c.AccessTTL = time.Duration(ttl) * time.Millisecond
	return &c, nil
}

func (s *Store) CreateClient(ctx context.Context, c *tokend.ClientApp) error {
	return s.inTx(ctx, "create client", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
			c.ID, c.Name, c.SecretHash, c.PrevSecretHash, micro(c.PrevSecretUntil), b2i(c.Public),
			joinList(c.Grants), joinList(c.Scopes), c.Mode, c.AccessTTL.Milliseconds(), b2i(c.Disabled), micro(c.CreatedAt))
		if err != nil {
			return wrap("create client", err)
		}
		c.Version = 1
		return recordChange(ctx, tx, tokend.ChangeClient, c.ID)
	})
}

func (s *Store) ClientByID(ctx context.Context, id string) (*tokend.ClientApp, error) {
	c, err := scanClient(s.row(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	return c, wrap("client by id", err)
}

func (s *Store) ListClients(ctx context.Context) ([]*tokend.ClientApp, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`)
	if err != nil {
		return nil, wrap("list clients", err)
	}
	defer rows.Close()
	var out []*tokend.ClientApp
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, wrap("list clients", err)
		}
		out = append(out, c)
	}
	return out, wrap("list clients", rows.Err())
}

func (s *Store) SetClientSecret(ctx context.Context, id string, hash []byte, prevUntil time.Time) error {
	return s.execChanged(ctx, "set client secret", tokend.ChangeClient, id,
		`UPDATE clients SET prev_secret_hash = CASE WHEN ? THEN secret_hash ELSE NULL END,
			prev_secret_until = ?, secret_hash = ?, version = version + 1 WHERE id = ?`,
		b2i(!prevUntil.IsZero()), micro(prevUntil), hash, id)
}

func (s *Store) DisableClient(ctx context.Context, id string) error {
	return s.execChanged(ctx, "disable client", tokend.ChangeClient, id,
		`UPDATE clients SET disabled = 1, version = version + 1 WHERE id = ?`, id)
}

// Keys.

func (s *Store) AddKey(ctx context.Context, k *tokend.SigningKey, afterKid string) error {
	const op = "add key"
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		var latest string
		var seq int64
		err := tx.QueryRowContext(ctx, `SELECT kid, seq FROM signing_keys WHERE alg = ? ORDER BY seq DESC LIMIT 1`, k.Alg).Scan(&latest, &seq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return wrap(op, err)
		}
		if latest != afterKid {
			return &tokend.Error{Code: tokend.ECONFLICT, Message: "another process rotated the key first"}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO signing_keys (kid, alg, private_key, created_at, activates_at, revoked_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.Alg, k.PrivateKey, micro(k.CreatedAt), micro(k.ActivatesAt), micro(k.RevokedAt), seq+1)
		if err != nil {
			return wrap(op, err)
		}
		return recordChange(ctx, tx, tokend.ChangeKey, k.ID)
	})
}

func (s *Store) ListKeys(ctx context.Context) ([]*tokend.SigningKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kid, alg, private_key, created_at, activates_at, revoked_at FROM signing_keys ORDER BY alg, seq`)
	if err != nil {
		return nil, wrap("list keys", err)
	}
	defer rows.Close()
	var out []*tokend.SigningKey
	for rows.Next() {
		var k tokend.SigningKey
		var created, activates, revoked int64
		if err := rows.Scan(&k.ID, &k.Alg, &k.PrivateKey, &created, &activates, &revoked); err != nil {
			return nil, wrap("list keys", err)
		}
		k.CreatedAt, k.ActivatesAt, k.RevokedAt = fromMicro(created), fromMicro(activates), fromMicro(revoked)
		out = append(out, &k)
	}
	return out, wrap("list keys", rows.Err())
}

func (s *Store) RevokeKey(ctx context.Context, kid string, at time.Time) error {
	return s.execChanged(ctx, "revoke key", tokend.ChangeKey, kid,
		`UPDATE signing_keys SET revoked_at = ? WHERE kid = ? AND revoked_at = 0`, micro(at), kid)
}

// Sessions.

const sessionColumns = `id, user_id, client_id, scope, dialect, counter, rotated_at, created_at, expires_at, revoked_at, revoke_reason`

func (s *Store) CreateSession(ctx context.Context, se *tokend.Session) error {
	_, err := s.exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		se.ID, se.UserID, se.ClientID, se.Scope, se.Dialect, se.Counter, micro(se.RotatedAt),
		micro(se.CreatedAt), micro(se.ExpiresAt), micro(se.RevokedAt), se.RevokeReason)
	return wrap("create session", err)
}

func (s *Store) SessionByID(ctx context.Context, id string) (*tokend.Session, error) {
	var se tokend.Session
	var rotated, created, expires, revoked int64
	err := s.row(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id).Scan(
		&se.ID, &se.UserID, &se.ClientID, &se.Scope, &se.Dialect, &se.Counter, &rotated, &created, &expires, &revoked, &se.RevokeReason)
	if err != nil {
		return nil, wrap("session by id", err)
	}
	se.RotatedAt, se.CreatedAt, se.ExpiresAt, se.RevokedAt = fromMicro(rotated), fromMicro(created), fromMicro(expires), fromMicro(revoked)
	return &se, nil
}

func (s *Store) AdvanceSession(ctx context.Context, id string, from int64, at time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE sessions SET counter = counter + 1, rotated_at = ?
		WHERE id = ? AND counter = ? AND revoked_at = 0 AND expires_at > ?`, micro(at), id, from, micro(at))
	if err != nil {
		return false, wrap("advance session", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("advance session", err)
}

func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, reason string) error {
	return s.inTx(ctx, "revoke session", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at = 0`, micro(at), reason, id)
		if err != nil {
			return wrap("revoke session", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // already revoked, or unknown: revocation is idempotent
		}
		return recordChange(ctx, tx, tokend.ChangeSession, id)
	})
}

// Revoked access tokens.

func (s *Store) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return s.inTx(ctx, "revoke token", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING`, jti, micro(expiresAt))
		if err != nil {
			return wrap("revoke token", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return recordChange(ctx, tx, tokend.ChangeToken, jti)
	})
}

func (s *Store) Revoked(ctx context.Context, now time.Time) (tokens, sessions []string, err error) {
	for _, q := range []struct {
		query string
		args  []any
		out   *[]string
	}{
		{`SELECT jti FROM revoked_tokens WHERE expires_at > ?`, []any{micro(now)}, &tokens},
		// Every revoked session still stored, expired or not: its access
		// tokens may outlive it (PurgeRevokedSessions bounds the set).
		{`SELECT id FROM sessions WHERE revoked_at <> 0`, nil, &sessions},
	} {
		rows, err := s.r.QueryContext(ctx, q.query, q.args...)
		if err != nil {
			return nil, nil, wrap("revoked", err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, nil, wrap("revoked", err)
			}
			*q.out = append(*q.out, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, wrap("revoked", err)
		}
	}
	return tokens, sessions, nil
}

func (s *Store) PurgeRevokedSessions(ctx context.Context, expiredBefore time.Time) error {
	_, err := s.exec(ctx, `DELETE FROM sessions WHERE revoked_at <> 0 AND expires_at < ?`, micro(expiredBefore))
	return wrap("purge revoked sessions", err)
}

// Settings, changes, housekeeping.

func (s *Store) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var v []byte
	err := s.row(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, wrap("read secret", err)
	}
	fresh, err := gen()
	if err != nil {
		return nil, fmt.Errorf("generate secret %s: %w", name, err)
	}
	// Another process may have created it meanwhile: keep whichever came first.
	if _, err := s.w.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
		return nil, wrap("create secret", err)
	}
	err = s.w.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	return v, wrap("read secret", err)
}

func (s *Store) Changes(ctx context.Context, after int64) ([]tokend.Change, int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, kind, ref FROM changes WHERE seq > ? ORDER BY seq LIMIT 10000`, after)
	if err != nil {
		return nil, after, wrap("changes", err)
	}
	defer rows.Close()
	var out []tokend.Change
	latest := after
	for rows.Next() {
		var c tokend.Change
		if err := rows.Scan(&c.Seq, &c.Kind, &c.Ref); err != nil {
			return nil, after, wrap("changes", err)
		}
		out = append(out, c)
		latest = c.Seq
	}
	return out, latest, wrap("changes", rows.Err())
}

func (s *Store) Purge(ctx context.Context, now time.Time, keepChanges time.Duration) error {
	return s.inTx(ctx, "purge", func(tx *sql.Tx) error {
		for _, q := range []struct {
			query string
			arg   int64
		}{
			{`DELETE FROM sessions WHERE expires_at < ? AND revoked_at = 0`, micro(now)},
			{`DELETE FROM revoked_tokens WHERE expires_at < ?`, micro(now)},
			{`DELETE FROM failures WHERE last < ?`, micro(now.Add(-24 * time.Hour))},
			{`DELETE FROM changes WHERE at < ? AND seq < (SELECT MAX(seq) FROM changes)`, micro(now.Add(-keepChanges))},
		} {
			if _, err := tx.ExecContext(ctx, q.query, q.arg); err != nil {
				return wrap("purge", err)
			}
		}
		return nil
	})
}

// Failure counters.

func (s *Store) RecordFailure(ctx context.Context, key string, at time.Time, window time.Duration) (tokend.FailureCount, error) {
	var f tokend.FailureCount
	var since, last int64
	restart := micro(at.Add(-window))
	err := s.w.QueryRowContext(ctx, `INSERT INTO failures (key, count, since, last) VALUES (?, 1, ?, ?)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN failures.since < ? THEN 1 ELSE failures.count + 1 END,
			since = CASE WHEN failures.since < ? THEN excluded.since ELSE failures.since END,
			last = excluded.last
		RETURNING count, since, last`, key, micro(at), micro(at), restart, restart).Scan(&f.Count, &since, &last)
	if err != nil {
		return f, wrap("record failure", err)
	}
	f.Since, f.Last = fromMicro(since), fromMicro(last)
	return f, nil
}

func (s *Store) Failures(ctx context.Context, key string) (tokend.FailureCount, error) {
	var f tokend.FailureCount
	var since, last int64
	err := s.row(ctx, `SELECT count, since, last FROM failures WHERE key = ?`, key).Scan(&f.Count, &since, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return tokend.FailureCount{}, nil
	}
	if err != nil {
		return f, wrap("failures", err)
	}
	f.Since, f.Last = fromMicro(since), fromMicro(last)
	return f, nil
}

func (s *Store) ResetFailures(ctx context.Context, key string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM failures WHERE key = ?`, key)
	return wrap("reset failures", err)
}
