package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/postgres"
	"github.com/tokend/tokend/sqlite"
)

// TestNewerSchemaRefused: a binary refuses to start, or to run any command
// on a store, whose schema a newer tokend migrated, with a message that says
// so; and it changes nothing.
func TestNewerSchemaRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := tokendBinary(t)
	check := func(t *testing.T, db string, known int, bump func()) {
		mustBinary(t, bin, "", "migrate", "--db", db)
		bump()
		for _, args := range [][]string{
			{"serve", "--addr", freeAddr(t)},
			{"user", "list"},
			{"migrate"},
			{"migrate", "--dry-run"},
		} {
			r := runBinary(t, bin, nil, "", append(args, "--db", db)...)
			want := "newer than this tokend knows"
			if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "schema version "+strconv.Itoa(known+1)) {
				t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", args, r.code, r.stderr, want)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokend.db")
		known := sqlite.SchemaVersion()
		check(t, "sqlite:"+path, known, func() {
			db := openDB(t, path)
			if _, err := db.Exec(`INSERT INTO schema_version (version) VALUES (?)`, known+1); err != nil {
				t.Fatal(err)
			}
			db.Close()
		})
		if v, err := sqlite.Version(context.Background(), path); err != nil || v != known+1 {
			t.Errorf("schema version after the refusals: %d, %v", v, err)
		}
		db := openDB(t, path)
		if n := queryInt(t, db, `SELECT COUNT(*) FROM signing_keys`); n != 0 {
			t.Errorf("a refused serve made %d keys", n)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgDSN(t)
		known := postgres.SchemaVersion()
		check(t, dsn, known, func() {
			conn, err := pgx.Connect(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), `INSERT INTO schema_version (version) VALUES ($1)`, known+1); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// TestMigrateCommand: `migrate --dry-run` shows the schema version and the
// pending migrations and changes nothing; `migrate` applies them, with one
// summary line when not on a terminal.
func TestMigrateCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := tokendBinary(t)
	all := sqlite.Migrations()
	dir := t.TempDir()

	t.Run("no database yet", func(t *testing.T) {
		path := filepath.Join(dir, "new.db")
		out := mustBinary(t, bin, "", "migrate", "--dry-run", "--db", "sqlite:"+path)
		for _, n := range all {
			if !strings.Contains(out, n) {
				t.Errorf("dry run does not list %s:\n%s", n, out)
			}
		}
		if _, err := os.Stat(path); err == nil {
			t.Error("a dry run created the database")
		}
	})

	t.Run("pending", func(t *testing.T) {
		// A store at schema version 1: the first migration only, applied
		// as the store does.
		path := filepath.Join(dir, "old.db")
		db := openDB(t, path)
		first, err := os.ReadFile(filepath.Join("..", "..", "sqlite", "migrations", all[0]))
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{`CREATE TABLE schema_version (version INTEGER NOT NULL)`, string(first), `INSERT INTO schema_version (version) VALUES (1)`} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		out := mustBinary(t, bin, "", "migrate", "--dry-run", "--db", "sqlite:"+path)
		if !strings.Contains(out, "schema version: 1 (this tokend: "+strconv.Itoa(len(all))+")") {
			t.Errorf("dry run:\n%s", out)
		}
		for i, n := range all {
			if listed := strings.Contains(out, "  "+n+"\n"); listed != (i > 0) {
				t.Errorf("dry run lists %s: %v, want %v:\n%s", n, listed, i > 0, out)
			}
		}
		if v, _ := sqlite.Version(context.Background(), path); v != 1 {
			t.Errorf("a dry run changed the schema version to %d", v)
		}
		r := runBinary(t, bin, nil, "", "migrate", "--db", "sqlite:"+path)
		if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || r.stderr != "" || !strings.Contains(r.stdout, all[len(all)-1]) {
			t.Errorf("migrate: exit %d, stdout %q, stderr %q; want one summary line", r.code, r.stdout, r.stderr)
		}
		if v, _ := sqlite.Version(context.Background(), path); v != len(all) {
			t.Errorf("after migrate the schema version is %d, want %d", v, len(all))
		}
		if out := mustBinary(t, bin, "", "migrate", "--dry-run", "--db", "sqlite:"+path); !strings.Contains(out, "up to date") {
			t.Errorf("dry run after migrate:\n%s", out)
		}
		if out := mustBinary(t, bin, "", "migrate", "--db", "sqlite:"+path); !strings.Contains(out, "up to date") {
			t.Errorf("migrate twice:\n%s", out)
		}
	})

	t.Run("postgres", func(t *testing.T) {
		dsn := pgDSN(t)
		out := mustBinary(t, bin, "", "migrate", "--dry-run", "--db", dsn)
		if !strings.Contains(out, "schema version: 0") || !strings.Contains(out, postgres.Migrations()[0]) {
			t.Errorf("dry run on an empty schema:\n%s", out)
		}
		mustBinary(t, bin, "", "migrate", "--db", dsn)
		if out := mustBinary(t, bin, "", "migrate", "--dry-run", "--db", dsn); !strings.Contains(out, "up to date") {
			t.Errorf("dry run after migrate:\n%s", out)
		}
	})
}

// TestVersion: `tokend version` prints the version, the commit Go stamped
// into the binary (none when it was built without VCS information, as in a
// git worktree or with -buildvcs=false) and the schema version.
func TestVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := tokendBinary(t)
	var got buildInfo
	if err := json.Unmarshal([]byte(mustBinary(t, bin, "", "version", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	stamped, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Skipf("go version -m: %v", err)
	}
	wantCommit := ""
	for _, l := range strings.Split(string(stamped), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "build\tvcs.revision="); ok {
			wantCommit = v
		}
	}
	if got.Commit != wantCommit {
		t.Errorf("commit %q, the binary was stamped with %q", got.Commit, wantCommit)
	}
	if got.SchemaSQLite != len(sqlite.Migrations()) || got.SchemaPostgres != len(postgres.Migrations()) || got.Version == "" || got.Go == "" {
		t.Errorf("version %+v", got)
	}
	text := mustBinary(t, bin, "", "version")
	for _, want := range []string{"tokend ", "commit: ", "schema version: " + strconv.Itoa(got.SchemaSQLite)} {
		if !strings.Contains(text, want) {
			t.Errorf("version output lacks %q:\n%s", want, text)
		}
	}
}

// previousSchema finds the code of the schema version before this one: the
// newest commit in this checkout's history whose migrations are a strict
// prefix of this build's (the state just before the newest migration
// landed), and builds its binary. It skips the test when there is no git
// history to read.
func previousSchema(t *testing.T) (bin, commit string, names []string) {
	t.Helper()
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", args...).Output()
		return strings.TrimSpace(string(out)), err
	}
	root, err := git("rev-parse", "--show-toplevel")
	if err != nil {
		t.Skipf("no git history: %v", err)
	}
	current := sqlite.Migrations()
	log, err := git("-C", root, "log", "--format=%H", "--", "sqlite/migrations")
	if err != nil || log == "" {
		t.Skipf("no git history of the migrations: %v", err)
	}
	// HEAD itself when this build adds a migration not yet committed; else
	// the parent of a commit that changed the migrations.
	var candidates []string
	for _, c := range strings.Fields(log) {
		candidates = append(candidates, c+"^")
	}
	for _, c := range append([]string{"HEAD"}, candidates...) {
		list, err := git("-C", root, "ls-tree", "--name-only", c, "sqlite/migrations/")
		if err != nil {
			continue // the first commit
		}
		var prev []string
		for _, p := range strings.Fields(list) {
			prev = append(prev, filepath.Base(p))
		}
		if len(prev) > 0 && len(prev) < len(current) && slices.Equal(prev, current[:len(prev)]) {
			commit, names = c, prev
			if full, err := git("-C", root, "rev-parse", "--short", c); err == nil {
				commit = full
			}
			break
		}
	}
	if commit == "" {
		t.Skip("no commit in the history has an earlier schema")
	}
	src := t.TempDir()
	archive := exec.Command("git", "-C", root, "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	if err := untar.Start(); err != nil {
		t.Skipf("tar: %v", err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v", commit, err)
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("untar %s: %v", commit, err)
	}
	bin = filepath.Join(src, "tokend-old")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tokend")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the binary of %s: %v\n%s", commit, err, out)
	}
	return bin, commit, names
}

// startBinary runs `BIN serve` with args (a --db among them) and waits until
// it answers; it is startServer for a binary other than this build's.
func startBinary(t *testing.T, bin, db string, args ...string) *server {
	t.Helper()
	s := &server{addr: freeAddr(t), bin: bin, db: db, done: make(chan error, 1), logs: &strings.Builder{}}
	s.cmd = exec.Command(bin, append([]string{"serve", "--addr", s.addr, "--db", db}, args...)...)
	s.cmd.Env = cleanEnv("TOKEND_DIALECTS=")
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logMu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.logMu.Unlock()
		}
		s.done <- s.cmd.Wait()
	}()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	eventually(t, bin+" listening", 20*time.Second, func() bool {
		select {
		case err := <-s.done:
			t.Fatalf("%s exited: %v\n%s", bin, err, s.Logs())
		default:
		}
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return s
}

// TestUpgradeOneVersion checks the promise that migrations are backward
// compatible for one version: a node running the previous schema version's
// code keeps working, next to a node of this version, after this version
// migrated the shared store. Nothing is mocked: the previous version is the
// real binary, built from the newest commit of this checkout's history whose
// migrations stop one step (or more) short of this build's, so the test
// follows every migration that lands (it compares whatever the newest
// migration is against the code just before it). The old node logs in,
// refreshes, issues, introspects and revokes on the migrated store, sees the
// users and clients the new version's CLI creates and the user it disables,
// and the new node reads what the old one wrote. Restarting the old node is
// refused (the newer schema), as it must be.
func TestUpgradeOneVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	oldBin, commit, oldNames := previousSchema(t)
	newBin := tokendBinary(t)
	t.Logf("previous version: %s, schema version %d; this build: schema version %d", commit, len(oldNames), len(sqlite.Migrations()))

	stores := []struct{ name, db string }{{"sqlite", "sqlite:" + filepath.Join(t.TempDir(), "tokend.db")}}
	if os.Getenv("TOKEND_TEST_POSTGRES") != "" {
		stores = append(stores, struct{ name, db string }{"postgres", pgDSN(t)})
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			db := st.db
			old := startBinary(t, oldBin, db, "--issuer", opsIssuer)
			oldCLI := func(stdin string, args ...string) string {
				return mustBinary(t, oldBin, stdin, append(args, "--db", db)...)
			}
			newCLI := func(stdin string, args ...string) string {
				return mustBinary(t, newBin, stdin, append(args, "--db", db)...)
			}
			var f opsFixture
			var m map[string]any
			json.Unmarshal([]byte(oldCLI("", "client", "add", "svc", "--grant", "client_credentials", "--grant", "password", "--grant", "refresh_token", "--json")), &m)
			f.svcID, _ = m["client_id"].(string)
			f.svcSecret, _ = m["client_secret"].(string)
			json.Unmarshal([]byte(oldCLI("", "client", "add", "web", "--public", "--json")), &m)
			f.webID, _ = m["client_id"].(string)
			for _, u := range []string{"alice", "carol"} {
				oldCLI(f.password(u)+"\n", append([]string{"user", "add", u, "--password-stdin"}, cheapArgon...)...)
			}
			alice := old.loginAs(f, "alice")
			carol := old.loginAs(f, "carol")
			if alice.status != 200 || carol.status != 200 {
				t.Fatalf("logins on the old node: %d %d", alice.status, carol.status)
			}

			// This version migrates the store while the old node serves.
			dry := newCLI("", "migrate", "--dry-run")
			for _, n := range sqlite.Migrations()[len(oldNames):] {
				if !strings.Contains(dry, n) {
					t.Errorf("dry run does not list %s:\n%s", n, dry)
				}
			}
			newCLI("", "migrate")
			if out := newCLI("", "migrate", "--dry-run"); !strings.Contains(out, "up to date") {
				t.Fatalf("not migrated:\n%s", out)
			}
			cur := startBinary(t, newBin, db, "--issuer", opsIssuer)
			newCLI(f.password("bob")+"\n", append([]string{"user", "add", "bob", "--password-stdin"}, cheapArgon...)...)
			json.Unmarshal([]byte(newCLI("", "client", "add", "svc2", "--json")), &m)
			svc2, svc2Secret := m["client_id"].(string), m["client_secret"].(string)
			newCLI("", "user", "disable", "carol")

			// The old node keeps working on the migrated store.
			r := old.refresh(alice.str("refresh_token"), f.webID)
			if r.status != 200 {
				t.Errorf("old node: refresh after the migration: %d %v", r.status, r.body)
			}
			if r := old.loginAs(f, "alice"); r.status != 200 {
				t.Errorf("old node: login after the migration: %d %v", r.status, r.body)
			}
			eventually(t, "old node sees the user the new CLI created", 5*time.Second, func() bool { return old.loginAs(f, "bob").status == 200 })
			eventually(t, "old node sees the client the new CLI created", 5*time.Second, func() bool {
				return old.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc2, svc2Secret).status == 200
			})
			eventually(t, "old node sees the user the new CLI disabled", 5*time.Second, func() bool {
				return old.refresh(carol.str("refresh_token"), f.webID).status == 400
			})
			if in := old.introspect(f, r.str("access_token")); in.body["active"] != true {
				t.Errorf("old node: introspection of its own token: %v", in.body)
			}
			cc := old.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.svcID, f.svcSecret)
			if cc.status != 200 {
				t.Fatalf("old node: client_credentials: %d %v", cc.status, cc.body)
			}
			if rv := old.post("/oauth2/revoke", url.Values{"token": {cc.str("access_token")}}, f.svcID, f.svcSecret); rv.status != 200 {
				t.Errorf("old node: revoke: %d %v", rv.status, rv.body)
			}

			// The new node reads what the old one wrote.
			if in := cur.introspect(f, r.str("access_token")); in.body["active"] != true {
				t.Errorf("new node: introspection of the old node's token: %v", in.body)
			}
			if rr := cur.refresh(r.str("refresh_token"), f.webID); rr.status != 200 {
				t.Errorf("new node: refresh of the old node's session: %d %v", rr.status, rr.body)
			}
			if in := old.introspect(f, cc.str("access_token")); in.body["active"] != false {
				t.Errorf("old node: introspection of the token it revoked: %d %v", in.status, in.body)
			}
			// How a running node learns of another's revocations (the change
			// feed) is no part of the schema; that it reads them from the
			// store is: a new node started now sees the old node's.
			later := startBinary(t, newBin, db, "--issuer", opsIssuer)
			if in := later.introspect(f, cc.str("access_token")); in.body["active"] != false {
				t.Errorf("new node: introspection of the token the old node revoked: %d %v", in.status, in.body)
			}
			for _, n := range []*server{old, cur, later} {
				if strings.Contains(n.Logs(), "level=ERROR") {
					t.Errorf("%s logged errors:\n%s", n.bin, n.Logs())
				}
			}

			// A restart of the old version is refused: the schema is newer.
			old.cmd.Process.Kill()
			<-old.done
			if r := runBinary(t, oldBin, nil, "", "serve", "--addr", freeAddr(t), "--db", db); r.code == 0 || !strings.Contains(r.stderr, "newer") {
				t.Errorf("the old binary started on the newer schema: exit %d %s", r.code, r.stderr)
			}
		})
	}
}
