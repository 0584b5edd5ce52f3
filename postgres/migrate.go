package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/jackc/pgx/v5"

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

// Version reads the schema version of the database that dsn names (in the
// first schema of its search_path) without changing anything: 0 when no
// migration ran there. It fails with EUNAVAILABLE when the database cannot
// be reached.
func Version(ctx context.Context, dsn string) (int, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return 0, fmt.Errorf("open postgres: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, wrap("read schema version", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_version') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, wrap("read schema version", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, wrap("read schema version", err)
	}
	return v, nil
}

func newerSchema(database, known int) error {
	return &tokend.SchemaTooNewError{Database: database, Known: known}
}
