package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// BackupInfo describes a snapshot that Backup wrote.
type BackupInfo struct {
	Bytes         int64 // size of the snapshot file
	SchemaVersion int   // schema version of the snapshot
}

// Backup writes a consistent snapshot of the database file at p to out,
// while other processes keep reading and writing it: SQLite's VACUUM INTO
// copies the database as one read transaction sees it (in WAL mode that
// blocks no writer), which a copy of the file, its -wal and -shm would
// not. The snapshot is written to a temporary file beside out, made a
// single self-contained file (rollback journal, not WAL), synced, given mode
// 0600 and only then renamed to out, so out is never a half-written file.
// An existing out is refused unless overwrite is set, and the source itself
// always is. progress, if not nil, is called now and then with the bytes
// written so far and the size of the source (the snapshot may end smaller:
// it leaves out free pages).
func Backup(ctx context.Context, p, out string, overwrite bool, progress func(done, total int64)) (BackupInfo, error) {
	var info BackupInfo
	src, err := os.Stat(p)
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if dst, err := os.Stat(out); err == nil {
		if os.SameFile(src, dst) {
			return info, fmt.Errorf("backup: %s is the database itself", out)
		}
		if !overwrite {
			return info, fmt.Errorf("backup: %s already exists (--force replaces it)", out)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return info, fmt.Errorf("backup: %w", err)
	}
	db, err := openReadOnly(p)
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	var pages, pageSize int64
	if err := db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		return info, fmt.Errorf("backup: read %s: %w", p, err)
	}
	if err := db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
		return info, fmt.Errorf("backup: read %s: %w", p, err)
	}

	// CreateTemp makes the file with mode 0600; VACUUM INTO accepts an
	// empty file and keeps its mode.
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	keep := false
	defer func() {
		if !keep {
			os.Remove(tmpName)
			os.Remove(tmpName + "-journal")
		}
	}()

	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if progress == nil {
			return
		}
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if fi, err := os.Stat(tmpName); err == nil {
					progress(fi.Size(), pages*pageSize)
				}
			}
		}
	}()
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, tmpName)
	close(stop)
	<-watched
	if err != nil {
		return info, fmt.Errorf("backup: snapshot %s: %w", p, err)
	}

	if info.SchemaVersion, err = finishSnapshot(ctx, tmpName); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if err := syncFile(tmpName); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if err := os.Chmod(tmpName, 0o600); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmpName, out); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	keep = true
	if d, err := os.Open(filepath.Dir(out)); err == nil {
		d.Sync() // the rename; some file systems cannot sync a directory
		d.Close()
	}
	fi, err := os.Stat(out)
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	info.Bytes = fi.Size()
	if progress != nil {
		progress(info.Bytes, info.Bytes)
	}
	return info, nil
}

// finishSnapshot turns the snapshot at p into one self-contained file (the
// rollback journal mode, so that no -wal file is needed to read it) and
// returns its schema version.
func finishSnapshot(ctx context.Context, p string) (int, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", fileURI(p, q))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode = DELETE`).Scan(&mode); err != nil {
		return 0, fmt.Errorf("snapshot journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "delete") {
		return 0, fmt.Errorf("snapshot journal mode is %s, want delete", mode)
	}
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("snapshot schema version: %w", err)
	}
	return v, nil
}

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Report is what Verify found in a snapshot.
type Report struct {
	SchemaVersion int // the snapshot's schema version
	Known         int // the newest schema version this build knows
	Users         int // every user, client apps' end users included
	Clients       int
	LiveSessions  int // sessions neither revoked nor expired at the time given
	Keys          int // signing keys, whatever their state
}

// Verify checks the database file at p without changing it: SQLite's
// integrity check, then the schema version (a snapshot that a newer tokend
// migrated cannot be restored under this one: *tokend.SchemaTooNewError),
// then it counts what the snapshot holds, live sessions as of now. step, if
// not nil, is called as each check starts.
func Verify(ctx context.Context, p string, now time.Time, step func(what string)) (Report, error) {
	if step == nil {
		step = func(string) {}
	}
	r := Report{Known: SchemaVersion()}
	db, err := openReadOnly(p)
	if err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	defer db.Close()

	step("integrity check")
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return r, fmt.Errorf("verify %s: not a readable SQLite database: %w", p, err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return r, fmt.Errorf("verify %s: integrity check: %w", p, err)
		}
		problems = append(problems, line)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("verify %s: integrity check: %w", p, err)
	}
	if len(problems) != 1 || problems[0] != "ok" {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("(%d more)", len(problems)-10))
		}
		return r, fmt.Errorf("verify %s: integrity check failed: %s", p, strings.Join(problems, "; "))
	}

	step("schema version")
	if r.SchemaVersion, err = schemaVersion(ctx, db); err != nil {
		return r, fmt.Errorf("verify %s: read schema version: %w", p, err)
	}
	if r.SchemaVersion == 0 {
		return r, fmt.Errorf("verify %s: not a tokend database (no schema version)", p)
	}
	if r.SchemaVersion > r.Known {
		return r, fmt.Errorf("verify %s: %w", p, newerSchema(r.SchemaVersion, r.Known))
	}

	step("counts")
	for _, c := range []struct {
		query string
		args  []any
		out   *int
	}{
		{`SELECT COUNT(*) FROM users`, nil, &r.Users},
		{`SELECT COUNT(*) FROM clients`, nil, &r.Clients},
		{`SELECT COUNT(*) FROM sessions WHERE revoked_at = 0 AND expires_at > ?`, []any{micro(now)}, &r.LiveSessions},
		{`SELECT COUNT(*) FROM signing_keys`, nil, &r.Keys},
	} {
		if err := db.QueryRowContext(ctx, c.query, c.args...).Scan(c.out); err != nil {
			return r, fmt.Errorf("verify %s: count: %w", p, err)
		}
	}
	return r, nil
}
