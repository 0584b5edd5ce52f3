package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const opsIssuer = "http://tokend.ops.test"

// TestBackupUnderLoadAndRestore takes a backup with the binary while
// logins and refreshes run, checks it with --verify, restores it the
// documented way (stop, replace the file, start: here, a new server on a
// copy) and checks that every user, client and key is there, that tokens
// issued before the backup still verify, and that sessions in the snapshot
// still refresh.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	dir := t.TempDir()
	s := startServer(t, dir, "--issuer", opsIssuer)
	f := provisionOps(t, s, 4)
	s.cli(t, "", "key", "rotate", "--alg", "EdDSA")

	// Before the backup: one idle session per user (not touched again),
	// and a client_credentials token.
	type held struct{ access, refresh string }
	var before []held
	for _, u := range f.users {
		r := s.loginAs(f, u)
		if r.status != 200 {
			t.Fatalf("login %s: %d %v", u, r.status, r.body)
		}
		before = append(before, held{r.str("access_token"), r.str("refresh_token")})
	}
	cc := s.post("/oauth2/token", map[string][]string{"grant_type": {"client_credentials"}}, f.svcID, f.svcSecret)
	if cc.status != 200 {
		t.Fatalf("client_credentials: %d %v", cc.status, cc.body)
	}
	before = append(before, held{access: cc.str("access_token")})
	var keysBefore []listedKey
	if err := json.Unmarshal([]byte(s.cli(t, "", "key", "list", "--json")), &keysBefore); err != nil {
		t.Fatal(err)
	}

	// The load: logins and refreshes until told to stop.
	var logins, refreshes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := f.users[w%len(f.users)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := s.loginAs(f, user)
				if r.status != 200 {
					continue
				}
				logins.Add(1)
				rt := r.str("refresh_token")
				for range 3 {
					rr := s.refresh(rt, f.webID)
					if rr.status != 200 {
						break
					}
					refreshes.Add(1)
					rt = rr.str("refresh_token")
				}
			}
		}()
	}
	eventually(t, "load under way", 10*time.Second, func() bool { return refreshes.Load() >= 20 })
	snap := filepath.Join(t.TempDir(), "snapshot.db")
	atBackup := [2]int64{logins.Load(), refreshes.Load()}
	r := runBinary(t, s.bin, nil, "", "backup", "--out", snap, "--db", s.db)
	during := [2]int64{logins.Load() - atBackup[0], refreshes.Load() - atBackup[1]}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if r.code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("load: %d logins, %d refreshes; %d and %d of them while the backup ran", logins.Load(), refreshes.Load(), during[0], during[1])
	// Not on a terminal: one summary line, nothing else.
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "backup: wrote ") || r.stderr != "" {
		t.Errorf("backup output: stdout %q, stderr %q; want one summary line", r.stdout, r.stderr)
	}
	fi, err := os.Stat(snap)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", fi.Mode().Perm())
	}
	if m, _ := filepath.Glob(snap + "*"); len(m) != 1 {
		t.Errorf("the snapshot is not one self-contained file: %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(snap), ".*")); len(m) != 0 {
		t.Errorf("temporary files left behind: %v", m)
	}

	// --verify, as JSON and as the summary line.
	var report map[string]any
	if err := json.Unmarshal([]byte(mustBinary(t, s.bin, "", "backup", "--verify", snap, "--json")), &report); err != nil {
		t.Fatal(err)
	}
	if report["integrity"] != "ok" || report["users"] != float64(len(f.users)) || report["clients"] != float64(2) ||
		report["keys"] != float64(len(keysBefore)) || report["live_sessions"].(float64) < float64(len(f.users)) {
		t.Errorf("verify report %v; want %d users, 2 clients, %d keys, at least %d live sessions", report, len(f.users), len(keysBefore), len(f.users))
	}
	if out := mustBinary(t, s.bin, "", "backup", "--verify", snap); !strings.Contains(out, "ok") || strings.Count(out, "\n") != 1 {
		t.Errorf("verify summary %q", out)
	}

	// Restore: a new server on a copy of the snapshot, same issuer.
	dir2 := t.TempDir()
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, "tokend.db"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, dir2, "--issuer", opsIssuer)

	var users []map[string]any
	json.Unmarshal([]byte(s2.cli(t, "", "user", "list", "--json")), &users)
	var names []string
	for _, u := range users {
		names = append(names, u["username"].(string))
	}
	if slices.Sort(names); !slices.Equal(names, f.users) {
		t.Errorf("restored users %v, want %v", names, f.users)
	}
	var clients []map[string]any
	json.Unmarshal([]byte(s2.cli(t, "", "client", "list", "--json")), &clients)
	var ids []string
	for _, c := range clients {
		ids = append(ids, c["client_id"].(string))
	}
	if !slices.Contains(ids, f.svcID) || !slices.Contains(ids, f.webID) || len(ids) != 2 {
		t.Errorf("restored clients %v, want %s and %s", ids, f.svcID, f.webID)
	}
	var keysAfter []listedKey
	json.Unmarshal([]byte(s2.cli(t, "", "key", "list", "--json")), &keysAfter)
	kids := func(ks []listedKey) (out []string) {
		for _, k := range ks {
			out = append(out, k.Kid)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(kids(keysAfter), kids(keysBefore)) {
		t.Errorf("restored keys %v, want %v", kids(keysAfter), kids(keysBefore))
	}

	for i, h := range before {
		if in := s2.introspect(f, h.access); in.status != 200 || in.body["active"] != true {
			t.Errorf("token %d issued before the backup does not verify on the restored server: %d %v", i, in.status, in.body)
		}
		if h.refresh == "" {
			continue
		}
		if rr := s2.refresh(h.refresh, f.webID); rr.status != 200 || rr.str("access_token") == "" {
			t.Errorf("session %d of the snapshot does not refresh on the restored server: %d %v", i, rr.status, rr.body)
		}
	}
	if r := s2.loginAs(f, f.users[0]); r.status != 200 {
		t.Errorf("login on the restored server: %d %v", r.status, r.body)
	}
	if r := s2.post("/oauth2/token", map[string][]string{"grant_type": {"client_credentials"}}, f.svcID, f.svcSecret); r.status != 200 {
		t.Errorf("client_credentials on the restored server: %d %v", r.status, r.body)
	}
}

// TestBackupRefusals: what backup and verify refuse, and how.
func TestBackupRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := tokendBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "tokend.db")
	mustBinary(t, bin, "", "client", "add", "app", "--db", "sqlite:"+db)
	snap := filepath.Join(dir, "snap.db")
	mustBinary(t, bin, "", "backup", "--out", snap, "--db", "sqlite:"+db)
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 500)), 0o600)
	corrupt := filepath.Join(dir, "corrupt.db")
	data, _ := os.ReadFile(snap)
	// Overwrite the header of every page after the first with junk: the
	// file still says SQLite, its b-trees no longer hold.
	for p := 4096; p+64 < len(data); p += 4096 {
		copy(data[p:], strings.Repeat("\x5a", 64))
	}
	os.WriteFile(corrupt, data, 0o600)
	newer := filepath.Join(dir, "newer.db")
	mustBinary(t, bin, "", "backup", "--out", newer, "--db", "sqlite:"+db)
	ndb := openDB(t, newer)
	if _, err := ndb.Exec(`INSERT INTO schema_version (version) VALUES (?)`, queryInt(t, ndb, `SELECT MAX(version) FROM schema_version`)+1); err != nil {
		t.Fatal(err)
	}
	ndb.Close()

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"existing file", []string{"backup", "--out", snap, "--db", "sqlite:" + db}, 1, "already exists"},
		{"the database itself", []string{"backup", "--out", db, "--db", "sqlite:" + db, "--force"}, 1, "the database itself"},
		{"no database", []string{"backup", "--out", filepath.Join(dir, "x.db"), "--db", "sqlite:" + filepath.Join(dir, "none.db")}, 1, "none.db"},
		{"postgres", []string{"backup", "--out", filepath.Join(dir, "pg.db"), "--db", "postgres://admin:hunter2@127.0.0.1:1/tokend"}, 1, "pg_dump"},
		{"neither flag", []string{"backup", "--db", "sqlite:" + db}, 2, "--out FILE or --verify FILE"},
		{"both flags", []string{"backup", "--out", "a", "--verify", "b"}, 2, "--out FILE or --verify FILE"},
		{"verify missing", []string{"backup", "--verify", filepath.Join(dir, "none.db")}, 1, "none.db"},
		{"verify garbage", []string{"backup", "--verify", garbage}, 1, "garbage.db"},
		{"verify corrupt", []string{"backup", "--verify", corrupt}, 1, "corrupt.db"},
		{"verify newer schema", []string{"backup", "--verify", newer}, 1, "newer than this tokend knows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runBinary(t, bin, nil, "", tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, tc.code, tc.stderr)
			}
			if strings.Contains(r.stderr, "hunter2") {
				t.Errorf("stderr shows the password: %q", r.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "pg.db")); err == nil {
		t.Error("a refused backup wrote a file")
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Error("backup of a missing database created it")
	}
	// --force replaces the snapshot with a fresh one.
	mustBinary(t, bin, "", "client", "add", "second", "--db", "sqlite:"+db)
	mustBinary(t, bin, "", "backup", "--out", snap, "--db", "sqlite:"+db, "--force")
	var report map[string]any
	json.Unmarshal([]byte(mustBinary(t, bin, "", "backup", "--verify", snap, "--json")), &report)
	if report["clients"] != float64(2) {
		t.Errorf("after --force the snapshot holds %v clients, want 2", report["clients"])
	}
}
