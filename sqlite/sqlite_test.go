package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the "sqlite" driver, to look at the file directly

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/sqlite"
	"github.com/tokend/tokend/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokend.Store {
		return open(t, filepath.Join(t.TempDir(), "tokend.db"))
	})
}

// open opens the store at path and closes it when t ends.
func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %s: %v", path, err)
		}
	})
	return s
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

// rawDB opens the file behind the store's back, to read or tamper with the schema.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokend.db")
	u := &tokend.User{
		ID:        uuid.Must(uuid.NewV7()).String(),
		Username:  "alice",
		Roles:     []string{"admin"},
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
	s := open(t, path)
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	_, latest, err := s.Changes(t.Context(), 0)
	if err != nil {
		t.Fatalf("changes: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	want := migrationCount(t)
	for i := range 2 {
		s := open(t, path)
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
		if err := s.Close(); err != nil {
			t.Fatalf("reopen %d: close: %v", i, err)
		}

		var rows, max int
		if err := rawDB(t, path).QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&rows, &max); err != nil {
			t.Fatalf("read schema_version: %v", err)
		}
		if rows != want || max != want {
			t.Fatalf("reopen %d: schema_version has %d rows, version %d; want %d and %d (migrations ran again)", i, rows, max, want, want)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokend.db")
	s := open(t, path)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	newer := migrationCount(t) + 1
	if _, err := rawDB(t, path).Exec(`INSERT INTO schema_version (version) VALUES (?)`, newer); err != nil {
		t.Fatalf("bump schema_version: %v", err)
	}

	s, err := sqlite.Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a file with a newer schema succeeded")
	}
	for _, want := range []string{"newer", "version"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not mention %q", err, want)
		}
	}
}

// TestConcurrentFirstOpen opens a new file from many goroutines at once, as
// a server and the CLI may: every open succeeds and migrations run once.
func TestConcurrentFirstOpen(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("race%d.db", round))
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := sqlite.Open(context.Background(), path)
				if err != nil {
					errs <- err
					return
				}
				s.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent open: %v", err)
		}
	}
}
