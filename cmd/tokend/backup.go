package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokend/tokend/sqlite"
)

// backupCommand is `tokend backup --out FILE` (a consistent snapshot of a
// SQLite store while the server keeps serving) and `tokend backup --verify
// FILE` (check a snapshot before trusting it). A PostgreSQL store is backed
// up with PostgreSQL's own tools.
func (c *cli) backupCommand() command {
	var out, verify string
	var force bool
	return command{
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&out, "out", "", "write a snapshot of the SQLite store to this file (mode 0600)")
			fs.BoolVar(&force, "force", false, "replace an existing --out file")
			fs.StringVar(&verify, "verify", "", "check a snapshot: integrity, schema version, and what it holds")
			fs.BoolVar(&c.json, "json", false, "print --verify's result as JSON")
		},
		check: func([]string) error {
			if (out == "") == (verify == "") {
				return usagef("backup needs --out FILE or --verify FILE")
			}
			return nil
		},
		direct: func(ctx context.Context, db string, _ []string) error {
			if verify != "" {
				return c.verifyBackup(ctx, verify)
			}
			return c.backup(ctx, db, out, force)
		},
	}
}

// sqlitePath returns the file a --db value names, if it names a SQLite store.
func sqlitePath(dsn string) (string, bool) {
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		return strings.TrimPrefix(dsn, "sqlite://"), true
	case strings.HasPrefix(dsn, "sqlite:"):
		return strings.TrimPrefix(dsn, "sqlite:"), true
	case strings.Contains(dsn, "://"):
		return "", false
	}
	return dsn, true
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// errPgDump answers a backup of a PostgreSQL store.
var errPgDump = errors.New("tokend backup copies SQLite stores; back up a PostgreSQL store with pg_dump " +
	"(e.g. pg_dump --format=custom --file=tokend.dump DATABASE) and restore it with pg_restore; see docs/operations.md")

func (c *cli) backup(ctx context.Context, db, out string, force bool) error {
	if isPostgres(db) {
		return errPgDump
	}
	path, ok := sqlitePath(db)
	if !ok {
		return fmt.Errorf("unsupported --db %q: want sqlite:PATH or postgres://...", redactDSN(db))
	}
	p := newProgress(c.stderr, c.stdout)
	start := time.Now()
	p.step("backing up %s", path)
	info, err := sqlite.Backup(ctx, path, out, force, func(done, total int64) {
		if total > 0 {
			p.update("backing up %s: %s of about %s (%d%%)", path, bytesText(done), bytesText(total), min(100, done*100/total))
		}
	})
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(out)
	p.done("backup: wrote %s (%s, schema version %d) in %s", abs, bytesText(info.Bytes), info.SchemaVersion, time.Since(start).Round(time.Millisecond))
	return nil
}

func (c *cli) verifyBackup(ctx context.Context, file string) error {
	p := newProgress(c.stderr, c.stdout)
	r, err := sqlite.Verify(ctx, file, time.Now(), func(what string) { p.step("verifying %s: %s", file, what) })
	if err != nil {
		p.clear()
		return err
	}
	if c.json {
		p.clear()
		return c.printJSON(map[string]any{
			"file": file, "integrity": "ok", "schema_version": r.SchemaVersion, "known_schema_version": r.Known,
			"users": r.Users, "clients": r.Clients, "live_sessions": r.LiveSessions, "keys": r.Keys,
		})
	}
	note := ""
	if r.SchemaVersion < r.Known {
		note = fmt.Sprintf("; this tokend migrates it to %d when it starts on it", r.Known)
	}
	p.done("%s: ok: integrity ok, schema version %d%s; %d users, %d clients, %d live sessions, %d keys",
		file, r.SchemaVersion, note, r.Users, r.Clients, r.LiveSessions, r.Keys)
	return nil
}
