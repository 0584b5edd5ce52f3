package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"strings"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/postgres"
	"github.com/tokend/tokend/sqlite"
)

// migrateCommand is `tokend migrate`: apply the schema migrations this
// binary knows to the store, before the new version serves (serve applies
// them too; this makes the step explicit and visible), and `tokend migrate
// --dry-run`: show what would be applied.
func (c *cli) migrateCommand() command {
	var dryRun bool
	return command{
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&dryRun, "dry-run", false, "show the schema version and the pending migrations; change nothing")
		},
		direct: func(ctx context.Context, db string, _ []string) error { return c.migrate(ctx, db, dryRun) },
	}
}

func (c *cli) migrate(ctx context.Context, db string, dryRun bool) error {
	var (
		known   []string
		current int
		err     error
		missing bool
	)
	switch path, ok := sqlitePath(db); {
	case isPostgres(db):
		known = postgres.Migrations()
		current, err = postgres.Version(ctx, db)
	case ok:
		known = sqlite.Migrations()
		current, err = sqlite.Version(ctx, path)
		if errors.Is(err, fs.ErrNotExist) {
			current, err, missing = 0, nil, true
		}
	default:
		return fmt.Errorf("unsupported --db %q: want sqlite:PATH or postgres://...", redactDSN(db))
	}
	if err != nil {
		return err
	}
	if current > len(known) {
		return fmt.Errorf("migrate: %w", &tokend.SchemaTooNewError{Database: current, Known: len(known)})
	}
	pending := known[current:]
	if dryRun {
		where := redactDSN(db)
		if missing {
			where += " (no database yet: migrate or serve creates it)"
		}
		fmt.Fprintf(c.stdout, "store: %s\nschema version: %d (this tokend: %d)\n", where, current, len(known))
		if len(pending) == 0 {
			fmt.Fprintln(c.stdout, "up to date: nothing to apply")
			return nil
		}
		fmt.Fprintf(c.stdout, "%d pending migrations:\n", len(pending))
		for _, n := range pending {
			fmt.Fprintf(c.stdout, "  %s\n", n)
		}
		return nil
	}
	if len(pending) == 0 {
		fmt.Fprintf(c.stdout, "migrate: up to date (schema version %d)\n", current)
		return nil
	}
	p := newProgress(c.stderr, c.stdout)
	var applied []string
	if isPostgres(db) {
		// PostgreSQL applies them all in one transaction (postgres.Open).
		p.step("applying %d migrations in one transaction: %s", len(pending), strings.Join(pending, ", "))
		st, err := postgres.Open(ctx, db)
		if err != nil {
			p.clear()
			return err
		}
		st.Close()
		applied = pending
	} else {
		path, _ := sqlitePath(db)
		applied, err = sqlite.Migrate(ctx, path, func(done, total int, name string) {
			if name != "" {
				p.step("migrating: %d/%d %s", done+1, total, name)
			}
		}, sqlite.Synchronous("full"))
		if err != nil {
			p.clear()
			return err
		}
	}
	p.done("migrate: applied %d migrations, schema version %d -> %d: %s", len(applied), current, current+len(applied), strings.Join(applied, ", "))
	return nil
}
