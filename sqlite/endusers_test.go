package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

// TestEndUserCountMigration: migration 0006 counts the end users that a
// store already has, so that the cap holds from the upgrade on.
func TestEndUserCountMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokend.db")
	s := open(t, path)
	ctx := t.Context()
	app := &tokend.ClientApp{ID: uuid.NewString(), Name: "app", Mode: tokend.ModeProduction, CreatedAt: time.Now()}
	if err := s.CreateClient(ctx, app); err != nil {
		t.Fatal(err)
	}
	newEndUser := func() *tokend.User {
		id := uuid.Must(uuid.NewV7()).String()
		return &tokend.User{ID: id, Username: id, ClientID: app.ID, CreatedAt: time.Now()}
	}
	for range 3 {
		if err := s.CreateUser(ctx, newEndUser()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateUser(ctx, &tokend.User{ID: uuid.NewString(), Username: "alice", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Back to the schema before the migration, with the users it must count.
	db := rawDB(t, path)
	if _, err := db.Exec(`DROP TABLE end_user_counts; DROP INDEX users_client_created`); err != nil {
		t.Fatal(err)
	}
	migration, err := os.ReadFile("migrations/0006_end_user_quota.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(migration)); err != nil {
		t.Fatalf("migration 0006: %v", err)
	}
	db.Close()

	s = open(t, path)
	q := tokend.EndUserQuota{Max: 4}
	if r, err := s.CreateEndUser(ctx, newEndUser(), q); err != nil || r != nil {
		t.Fatalf("fourth end user of a cap of 4: %+v, %v", r, err)
	}
	if r, err := s.CreateEndUser(ctx, newEndUser(), q); err != nil || r == nil || !r.Full {
		t.Fatalf("fifth end user of a cap of 4: %+v, %v", r, err)
	}
}
