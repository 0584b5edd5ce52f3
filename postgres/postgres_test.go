package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/postgres"
	"github.com/tokend/tokend/storetest"
)

// testDSN returns the DSN of the test database, or skips t when none is set.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("TOKEND_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("TOKEND_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable): skipping the PostgreSQL tests")
	}
	return dsn
}

// admin runs one statement on the test database, behind the store's back.
func admin(t *testing.T, query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// freshSchema creates an empty schema, dropped when t ends, and returns it
// with a DSN whose search_path names it, so that every test has a database
// of its own.
func freshSchema(t *testing.T) (dsn, schema string) {
	t.Helper()
	dsn = testDSN(t)
	b := make([]byte, 8)
	rand.Read(b)
	schema = "t_" + hex.EncodeToString(b)
	ident := pgx.Identifier{schema}.Sanitize()
	admin(t, `CREATE SCHEMA `+ident)
	t.Cleanup(func() { admin(t, `DROP SCHEMA `+ident+` CASCADE`) })
	return withParam(t, dsn, "search_path", schema), schema
}

// withParam sets a connection parameter in dsn, a URL or key=value pairs.
func withParam(t *testing.T, dsn, key, value string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " " + key + "=" + value
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse TOKEND_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// open opens the store at dsn and closes it when t ends (before its schema
// is dropped).
func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	testDSN(t)
	storetest.Run(t, func(t *testing.T) tokend.Store {
		dsn, _ := freshSchema(t)
		return open(t, dsn)
	})
}

// migrationCount is the number of migrations this binary embeds.
func migrationCount(t *testing.T) int {
	t.Helper()
	names, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("find migrations: %v, %d files", err, len(names))
	}
	return len(names)
}

// schemaVersion reads the schema_version table of schema.
func schemaVersion(t *testing.T, schema string) (rows, max int) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), testDSN(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	table := pgx.Identifier{schema, "schema_version"}.Sanitize()
	if err := conn.QueryRow(t.Context(), `SELECT COUNT(*), COALESCE(MAX(version), 0) FROM `+table).Scan(&rows, &max); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return rows, max
}

// TestConcurrentFirstOpen opens a new schema from many goroutines at once, as
// nodes starting together do: every open succeeds, migrations run once, and
// the tables land in the schema that the DSN's search_path names.
func TestConcurrentFirstOpen(t *testing.T) {
	want := migrationCount(t)
	for round := range 3 {
		dsn, schema := freshSchema(t)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				s, err := postgres.Open(t.Context(), dsn)
				if err != nil {
					errs[i] = err
					return
				}
				errs[i] = s.Ping(t.Context())
				s.Close()
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: open %d: %v", round, i, err)
			}
		}
		if rows, max := schemaVersion(t, schema); rows != want || max != want {
			t.Fatalf("round %d: schema_version has %d rows, version %d; want %d and %d", round, rows, max, want, want)
		}
	}
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	dsn, schema := freshSchema(t)
	u := &tokend.User{
		ID:        uuid.Must(uuid.NewV7()).String(),
		Username:  "alice",
		Roles:     []string{"admin"},
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
	s := open(t, dsn)
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	_, latest, err := s.Changes(t.Context(), 0)
	if err != nil {
		t.Fatalf("changes: %v", err)
	}
	s.Close()

	want := migrationCount(t)
	for i := range 2 {
		s := open(t, dsn)
		got, err := s.UserByName(t.Context(), "alice")
		if err != nil {
			t.Fatalf("reopen %d: user by name: %v", i, err)
		}
		if got.ID != u.ID || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("reopen %d: user = %+v, want %+v", i, got, u)
		}
		if _, gotLatest, err := s.Changes(t.Context(), 0); err != nil || gotLatest != latest {
			t.Errorf("reopen %d: latest change = %d, %v; want %d", i, gotLatest, err, latest)
		}
		s.Close()
		if rows, max := schemaVersion(t, schema); rows != want || max != want {
			t.Fatalf("reopen %d: schema_version has %d rows, version %d; want %d and %d (migrations ran again)", i, rows, max, want, want)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dsn, schema := freshSchema(t)
	open(t, dsn).Close()
	admin(t, `INSERT INTO `+pgx.Identifier{schema, "schema_version"}.Sanitize()+` (version) VALUES ($1)`, migrationCount(t)+1)

	s, err := postgres.Open(t.Context(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	for _, want := range []string{"newer", "version"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not mention %q", err, want)
		}
	}
}

// TestUnstorableKeys looks up keys that PostgreSQL text cannot hold (a NUL
// byte, invalid UTF-8): they name nothing, so they are not found, rather
// than failing as internal errors.
func TestUnstorableKeys(t *testing.T) {
	dsn, _ := freshSchema(t)
	s := open(t, dsn)
	ctx := t.Context()
	for _, key := range []string{"a\x00b", "\xff\xfe"} {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			for name, call := range map[string]func() error{
				"UserByID":        func() error { _, err := s.UserByID(ctx, key); return err },
				"UserByName":      func() error { _, err := s.UserByName(ctx, key); return err },
				"ClientByID":      func() error { _, err := s.ClientByID(ctx, key); return err },
				"SessionByID":     func() error { _, err := s.SessionByID(ctx, key); return err },
				"SetUserPassword": func() error { return s.SetUserPassword(ctx, key, "x") },
				"DisableClient":   func() error { return s.DisableClient(ctx, key) },
				"RevokeKey":       func() error { return s.RevokeKey(ctx, key, time.Now()) },
			} {
				if got := tokend.ErrorCode(call()); got != tokend.ENOTFOUND {
					t.Errorf("%s: error code %q, want %q", name, got, tokend.ENOTFOUND)
				}
			}
			if ok, err := s.AdvanceSession(ctx, key, 0, time.Now()); ok || err != nil {
				t.Errorf("AdvanceSession = %v, %v; want false, nil", ok, err)
			}
			u := &tokend.User{ID: uuid.NewString(), Username: key, CreatedAt: time.Now()}
			if got := tokend.ErrorCode(s.CreateUser(ctx, u)); got != tokend.EINVALID {
				t.Errorf("CreateUser with username %q: error code %q, want %q", key, got, tokend.EINVALID)
			}
		})
	}
}

// TestLockedRowAnswersUnavailable holds a session's row lock from another
// connection: a refresh gives up within the lock timeout with EUNAVAILABLE
// instead of holding the request and a pooled connection.
func TestLockedRowAnswersUnavailable(t *testing.T) {
	dsn, schema := freshSchema(t)
	s := open(t, dsn)
	now := time.Now().UTC().Truncate(time.Microsecond)
	se := &tokend.Session{ID: uuid.NewString(), UserID: uuid.NewString(), RotatedAt: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(t.Context(), se); err != nil {
		t.Fatalf("create session: %v", err)
	}
	conn, err := pgx.Connect(t.Context(), testDSN(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM `+pgx.Identifier{schema, "sessions"}.Sanitize()+` WHERE id = $1 FOR UPDATE`, se.ID); err != nil {
		t.Fatalf("lock the session: %v", err)
	}

	start := time.Now()
	ok, err := s.AdvanceSession(t.Context(), se.ID, 0, now)
	if code := tokend.ErrorCode(err); ok || code != tokend.EUNAVAILABLE {
		t.Fatalf("AdvanceSession of a locked session = %v, %v; want false, %s", ok, err, tokend.EUNAVAILABLE)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("AdvanceSession of a locked session took %v", took)
	}

	tx.Rollback(t.Context())
	if ok, err := s.AdvanceSession(t.Context(), se.ID, 0, now); !ok || err != nil {
		t.Fatalf("AdvanceSession once the lock is gone = %v, %v; want true", ok, err)
	}
}

// proxy stands between a store and the test database, so that a test can
// make the database go away (cut) or stop answering (hang).
type proxy struct {
	ln     net.Listener
	target string
	hang   atomic.Bool // drop every byte instead of passing it on

	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies src to dst, or swallows it while the proxy hangs.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.hang.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if !p.hang.Load() {
		dst.Close()
	}
}

// cut closes every connection that passes through the proxy.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) close() {
	p.ln.Close()
	p.cut()
}

// dsnVia returns dsn with its host and port replaced by the proxy's.
func dsnVia(t *testing.T, dsn string, p *proxy) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Skipf("TOKEND_TEST_POSTGRES is not a URL (%v): cannot route it through a proxy", err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// target returns the host:port of the test database.
func target(t *testing.T) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(testDSN(t))
	if err != nil {
		t.Fatalf("parse TOKEND_TEST_POSTGRES: %v", err)
	}
	return net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
}

// wantUnavailable fails t unless err is EUNAVAILABLE and came within limit.
func wantUnavailable(t *testing.T, what string, start time.Time, limit time.Duration, err error) {
	t.Helper()
	if code := tokend.ErrorCode(err); code != tokend.EUNAVAILABLE {
		t.Errorf("%s: error code %q (%v), want %q", what, code, err, tokend.EUNAVAILABLE)
	}
	var te *tokend.Error
	if errors.As(err, &te) && te.Err == nil {
		t.Errorf("%s: EUNAVAILABLE without its cause", what)
	}
	took := time.Since(start)
	if took > limit {
		t.Errorf("%s took %v, want at most %v", what, took, limit)
	}
	t.Logf("%s: %v, after %v", what, err, took.Round(time.Millisecond))
}

func TestUnavailable(t *testing.T) {
	testDSN(t)

	t.Run("no server", func(t *testing.T) {
		start := time.Now()
		s, err := postgres.Open(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1")
		if err == nil {
			s.Close()
			t.Fatal("Open of an unreachable server succeeded")
		}
		wantUnavailable(t, "Open", start, 3*time.Second, err)
	})

	// viaProxy opens a store that reaches the test database through a proxy.
	viaProxy := func(t *testing.T) (*postgres.Store, *proxy) {
		d, _ := freshSchema(t)
		p := newProxy(t, target(t))
		return open(t, dsnVia(t, d, p)), p
	}
	id := uuid.NewString()

	t.Run("server gone", func(t *testing.T) {
		s, p := viaProxy(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("ping before the cut: %v", err)
		}
		p.close()
		start := time.Now()
		wantUnavailable(t, "Ping", start, 3*time.Second, s.Ping(t.Context()))
		start = time.Now()
		_, err := s.UserByID(t.Context(), id)
		wantUnavailable(t, "UserByID", start, 3*time.Second, err)
		start = time.Now()
		wantUnavailable(t, "CreateUser", start, 3*time.Second,
			s.CreateUser(t.Context(), &tokend.User{ID: id, Username: "alice", CreatedAt: time.Now()}))
	})

	t.Run("server hangs", func(t *testing.T) {
		s, p := viaProxy(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("ping before the hang: %v", err)
		}
		p.hang.Store(true)
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		wantUnavailable(t, "Ping", start, 2*time.Second, s.Ping(ctx))
		ctx, cancel = context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		start = time.Now()
		_, err := s.UserByID(ctx, id)
		wantUnavailable(t, "UserByID", start, 2*time.Second, err)
		// pgx sends a cancel request for the abandoned query, which the
		// proxy swallows too; closing the proxy lets Close finish at once.
		p.close()
	})

}

// TestListen changes the store through one handle and waits for the
// notification on another, as two nodes do; it also checks that changes
// that caches do not hold, and changes in another schema, wake no one, and
// that Listen comes back after its connection is cut.
func TestListen(t *testing.T) {
	dsn, _ := freshSchema(t)
	p := newProxy(t, target(t))
	a := open(t, dsn)
	b := open(t, dsnVia(t, dsn, p)) // b listens through the proxy, so that the test can cut it
	otherDSN, _ := freshSchema(t)
	other := open(t, otherDSN)

	calls := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- b.Listen(ctx, func() { calls <- struct{}{} })
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Listen returned %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Listen did not return once its context ended")
		}
	}()
	wait := func(what string, within time.Duration) {
		t.Helper()
		select {
		case <-calls:
		case <-time.After(within):
			t.Fatalf("no onChange within %v of %s", within, what)
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case <-calls:
			t.Fatalf("onChange called after %s", what)
		case <-time.After(300 * time.Millisecond):
		}
	}
	wait("starting to listen", 5*time.Second)

	newUser := func(name string) *tokend.User {
		return &tokend.User{ID: uuid.NewString(), Username: name, CreatedAt: time.Now()}
	}
	alice := newUser("alice")
	if err := a.CreateUser(t.Context(), alice); err != nil {
		t.Fatalf("create user: %v", err)
	}
	wait("a change through the other handle", time.Second)

	if err := a.TouchLogin(t.Context(), alice.ID, time.Now()); err != nil {
		t.Fatalf("touch login: %v", err)
	}
	quiet("a login, which records no change")
	if err := other.CreateUser(t.Context(), newUser("bob")); err != nil {
		t.Fatalf("create user in another schema: %v", err)
	}
	quiet("a change in another schema")

	p.cut()
	wait("listening again after the connection was cut", 5*time.Second)
	if err := a.SetUserPassword(t.Context(), alice.ID, "new hash"); err != nil {
		t.Fatalf("set user password: %v", err)
	}
	wait("a change after reconnecting", time.Second)
}
