package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

type hashVector struct{ Maker, Password, Hash string }

// loadVectors reads the hashes the real libraries made (secret/testdata).
func loadVectors(t *testing.T) []hashVector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "secret", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []hashVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// writeLines writes lines to a new file in dir.
func writeLines(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func jsonLine(fields map[string]any) string {
	b, _ := json.Marshal(fields)
	return string(b)
}

// importedUser is one user of the round trip's file, with what it was
// made of.
type importedUser struct {
	name, id string
	v        hashVector
}

// TestImportRoundTrip imports 10,000 users whose passwords exist only as
// hashes the real libraries made (every format of secret/testdata, in
// turn) with `tokend user import`, then starts `tokend serve` on that
// store and logs in as a user of each format at /oauth2/token, simplejwt
// and OCM: the first login replaces the foreign hash with argon2id. The
// same file again is all skipped; --on-conflict update changes roles.
func TestImportRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 10,000 users and starts the binary")
	}
	f := newFixture(t)
	dir := t.TempDir()
	vs := loadVectors(t)
	const n = 10000
	file := filepath.Join(dir, "users.jsonl")
	out, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(out)
	sample := map[string]importedUser{} // the first user of each maker
	for i := range n {
		v := vs[i%len(vs)]
		u := importedUser{name: fmt.Sprintf("%s-%05d", v.Maker, i), v: v}
		rec := map[string]any{"username": u.name, "password_hash": v.Hash, "roles": []string{"imported"}, "created_at": "2020-01-02T03:04:05Z"}
		if i%2 == 0 {
			u.id = fmt.Sprint(42 + i/2) // "42", "43", ... as the source numbered them
			rec["id"] = u.id
		}
		if i%5 == 0 {
			rec["claims"] = map[string]any{"legacy_id": i}
			rec["last_login_at"] = "2024-06-07T08:09:10Z"
		}
		if _, ok := sample[v.Maker]; !ok {
			sample[v.Maker] = u
		}
		fmt.Fprintln(w, jsonLine(rec))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out.Close()

	stdout := f.must("", "user", "import", file, "--allow-weak-hashes")
	if !strings.Contains(stdout, "10000 records") || !strings.Contains(stdout, ": 10000 imported, 0 updated, 0 skipped, 0 rejected") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("summary: %q", stdout)
	}
	if u := f.user(sample["bcrypt"].name); u.CreatedAt.Format("2006-01-02T15:04:05Z") != "2020-01-02T03:04:05Z" || !slices.Equal(u.Roles, []string{"imported"}) {
		t.Errorf("imported user: %+v", u)
	}
	if u, err := f.store().UserByID(t.Context(), "42"); err != nil || u.Username != vs[0].Maker+"-00000" || u.LastLoginAt.IsZero() || u.Claims["legacy_id"] == nil {
		t.Errorf("user 42: %v %+v", err, u)
	}

	// Cheap argon2id on the server: the upgraded hashes are checked fast.
	s := startServer(t, dir, "--db", f.db(), "--dialects", "simplejwt,ocm", "--argon2-memory", "1024", "--argon2-time", "1")
	serverParams := secret.Params{MemoryKiB: 1024, Time: 1, Threads: 1}
	var web map[string]any
	json.Unmarshal([]byte(s.cli(t, "", "client", "add", "web", "--public", "--json")), &web)
	logins := []struct {
		name string
		do   func(user, pw string) httpResult
		tok  string
	}{
		{"oauth", func(user, pw string) httpResult {
			return s.post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}, "client_id": {web["client_id"].(string)}}, "", "")
		}, "access_token"},
		{"simplejwt", func(user, pw string) httpResult {
			return s.sendJSON("/api/v1/token/", jsonLine(map[string]any{"username": user, "password": pw}), "")
		}, "access"},
		{"ocm", func(user, pw string) httpResult {
			return s.sendJSON("/system/api/v1/security/token", `{}`, basicAuth(user, pw))
		}, "accessToken"},
	}
	makers := slices.Sorted(func(yield func(string) bool) {
		for m := range sample {
			if !yield(m) {
				return
			}
		}
	})
	if len(makers) != 24 {
		t.Fatalf("%d formats in the vectors", len(makers))
	}
	for i, maker := range makers {
		u := sample[maker]
		first := logins[i%len(logins)]
		if r := first.do(u.name, u.v.Password); r.status != 200 || r.str(first.tok) == "" {
			t.Fatalf("%s: login at %s: %d %v %v", maker, first.name, r.status, r.body, r.err)
		}
		stored := f.user(u.name)
		switch {
		case !secret.NeedsRehash(u.v.Hash, serverParams):
			// An argon2id hash at least as strong as the server's stays.
			if stored.PasswordHash != u.v.Hash {
				t.Errorf("%s: a hash that needs no upgrade was replaced", maker)
			}
		case stored.PasswordHash == u.v.Hash || !strings.HasPrefix(stored.PasswordHash, "$argon2id$") || secret.NeedsRehash(stored.PasswordHash, serverParams):
			t.Errorf("%s: the hash was not upgraded at the first login: %.16s", maker, stored.PasswordHash)
		}
		if u.id != "" && stored.ID != u.id {
			t.Errorf("%s: id %q, want %q", maker, stored.ID, u.id)
		}
		for _, l := range logins {
			if l.name == first.name {
				continue
			}
			if r := l.do(u.name, u.v.Password); r.status != 200 {
				t.Errorf("%s: login at %s after the upgrade: %d %v", maker, l.name, r.status, r.body)
			}
		}
	}

	// The same file again: every user is there already.
	stdout = f.must("", "user", "import", file, "--allow-weak-hashes")
	if !strings.Contains(stdout, ": 0 imported, 0 updated, 10000 skipped, 0 rejected") {
		t.Errorf("second run: %q", stdout)
	}
	// --on-conflict update: roles change, by id and by name; the upgraded
	// hash stays (no hash given), and the server sees it.
	bc := sample["bcrypt"]
	upd := writeLines(t, dir, "roles.jsonl",
		jsonLine(map[string]any{"id": "43", "username": vs[2].Maker + "-00002", "roles": []string{"admin", "imported"}}),
		jsonLine(map[string]any{"username": bc.name, "roles": []string{"auditor"}}),
	)
	stdout = f.must("", "user", "import", upd, "--on-conflict", "update")
	if !strings.Contains(stdout, ": 0 imported, 2 updated, 0 skipped, 0 rejected") {
		t.Errorf("update: %q", stdout)
	}
	if u := f.user(bc.name); !slices.Equal(u.Roles, []string{"auditor"}) || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Errorf("after the update: roles %v, hash %.12s", u.Roles, u.PasswordHash)
	}
	if u := f.user(vs[2].Maker + "-00002"); u.ID != "43" || !slices.Equal(u.Roles, []string{"admin", "imported"}) || u.PasswordHash != vs[2].Hash {
		t.Errorf("user 43 after the update: %s %v %.12s", u.ID, u.Roles, u.PasswordHash)
	}
	r := logins[0].do(bc.name, bc.v.Password)
	if r.status != 200 {
		t.Fatalf("login after the update: %d", r.status)
	}
	if claims := decodeClaims(t, r.str("access_token")); fmt.Sprint(claims["roles"]) != "[auditor]" {
		t.Errorf("the server's token after the update carries roles %v", claims["roles"])
	}
	// With --on-conflict fail, a user that is there is a rejection.
	res, _, err := f.run("", "user", "import", upd, "--on-conflict", "fail")
	if err == nil || !strings.Contains(res, "2 rejected") {
		t.Errorf("--on-conflict fail: %v %q", err, res)
	}
}

// decodeClaims reads a JWT's claims without checking it (the server made it).
func decodeClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.20q", jwt)
	}
	b, err := decodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestImportRejections: every kind of bad record is a rejection naming
// its line, never quoting a hash or a password; the good records around
// them are imported, and the exit status says something was rejected.
func TestImportRejections(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	vs := loadVectors(t)
	bc, md5 := vs[0].Hash, ""
	for _, v := range vs {
		if v.Maker == "md5" {
			md5 = v.Hash
		}
	}
	const secretPW = "plaintext-Hunter2!"
	lines := []string{
		jsonLine(map[string]any{"id": "7", "username": "ok-1", "password_hash": bc}),                      // 1
		jsonLine(map[string]any{"id": "bad id!", "username": "r-id", "password_hash": bc}),                // 2
		jsonLine(map[string]any{"username": "r-format", "password_hash": "sha512$notahash$cafebabe"}),     // 3
		jsonLine(map[string]any{"username": "r-weak", "password_hash": md5}),                              // 4
		jsonLine(map[string]any{"password_hash": bc, "roles": []string{"x"}}),                             // 5
		jsonLine(map[string]any{"username": "0193a0b2-7c1e-7d6a-9b2c-1a2b3c4d5e6f", "password_hash": bc}), // 6
		jsonLine(map[string]any{"username": "r-claim", "claims": map[string]any{"sub": "x"}}),             // 7
		jsonLine(map[string]any{"username": "r-both", "password": secretPW, "password_hash": bc}),         // 8
		`{"username": "r-json", "password_hash": "` + bc,                                                  // 9
		jsonLine(map[string]any{"username": "r-field", "passwd": secretPW}),                               // 10
		"", // 11
		jsonLine(map[string]any{"username": "ok-2", "password": secretPW}),                                     // 12
		jsonLine(map[string]any{"username": "r-trunc", "password_hash": bc[:len(bc)-1]}),                       // 13
		jsonLine(map[string]any{"username": "r-cut", "password_hash": vs[9].Hash[:len(vs[9].Hash)-10] + "$$"}), // 14
	}
	file := writeLines(t, dir, "mixed.jsonl", lines...)
	stdout, stderr, err := f.run("", "user", "import", file, "--json", "--argon2-memory", "1024", "--argon2-time", "1")
	if err == nil {
		t.Fatal("an import with rejections succeeded")
	}
	var sum struct {
		Imported, Rejected int
		Rejections         []struct {
			Line   int
			Reason string
		}
	}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("--json: %v: %q", err, stdout)
	}
	want := map[int]string{
		2: "id: must be 1 to 128 characters", 3: "password_hash: format not recognised", 4: "password_hash: is a weak md5 hash",
		5: "username: is required", 6: "must not look like a UUID", 7: "claims.sub:", 8: "give password or password_hash, not both",
		9: "malformed JSON", 10: "passwd: unknown field", 13: "password_hash:", 14: "password_hash:",
	}
	if sum.Imported != 2 || sum.Rejected != len(want) || len(sum.Rejections) != len(want) {
		t.Fatalf("summary %+v", sum)
	}
	for _, r := range sum.Rejections {
		if w, ok := want[r.Line]; !ok || !strings.Contains(r.Reason, w) {
			t.Errorf("line %d: %q, want %q", r.Line, r.Reason, w)
		}
	}
	for _, leak := range []string{bc, bc[7:29], md5, secretPW, "cafebabe", vs[9].Hash[20:40]} {
		if strings.Contains(stdout+stderr, leak) {
			t.Errorf("the output quotes %q:\n%s\n%s", leak, stdout, stderr)
		}
	}
	for _, name := range []string{"ok-1", "ok-2"} {
		f.user(name)
	}
	if _, err := f.store().UserByName(t.Context(), "r-weak"); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Errorf("a rejected record was imported: %v", err)
	}
	// The binary's exit status, and its lines for people.
	r := runBinary(t, tokendBinary(t), nil, "", "user", "import", file, "--db", f.db())
	if r.code != 1 || !strings.Contains(r.stdout, ": 0 imported, 0 updated, 2 skipped, 11 rejected") ||
		!strings.Contains(r.stderr, "line 4: password_hash: is a weak md5 hash") || !strings.Contains(r.stderr, "11 of 13 records rejected") {
		t.Errorf("binary: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestImportCSV imports a CSV file: roles separated by spaces, claims as
// JSON in a cell, a header in any order; a header naming an unknown
// column is refused before anything is imported.
func TestImportCSV(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	bc := loadVectors(t)[0]
	csvFile := writeLines(t, dir, "users.csv",
		"username,roles,claims,id,password_hash,disabled,created_at",
		`alice,staff admin,"{""dept"": ""ops""}",42,`+bc.Hash+`,false,2021-02-03T04:05:06Z`,
		`bob,,,,,true,`,
		`carol,too,many,cells,here,x,y,z`,
		`dave,ops,{not json},,,,`,
	)
	stdout, stderr, err := f.run("", "user", "import", csvFile)
	if err == nil || !strings.Contains(stdout, ": 2 imported, 0 updated, 0 skipped, 2 rejected") ||
		!strings.Contains(stderr, "line 4: has 8 cells") || !strings.Contains(stderr, "line 5: claims: must be a JSON object") {
		t.Fatalf("csv: %v\n%s\n%s", err, stdout, stderr)
	}
	a := f.user("alice")
	if a.ID != "42" || !slices.Equal(a.Roles, []string{"staff", "admin"}) || a.Claims["dept"] != "ops" || a.PasswordHash != bc.Hash || a.CreatedAt.Year() != 2021 {
		t.Errorf("alice: %+v", a)
	}
	if b := f.user("bob"); !b.Disabled || b.PasswordHash != "" || len(b.Roles) != 0 {
		t.Errorf("bob: %+v", b)
	}
	bad := writeLines(t, dir, "bad.csv", "username,email", "erin,erin@example.com")
	_, _, err = f.run("", "user", "import", bad)
	if err == nil || !strings.Contains(err.Error(), `unknown column "email"`) {
		t.Errorf("unknown column: %v", err)
	}
	if _, err := f.store().UserByName(t.Context(), "erin"); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Errorf("a refused file imported erin: %v", err)
	}
	// Usage: a file whose format its name does not tell, a bad flag.
	for _, args := range [][]string{{"user", "import", filepath.Join(dir, "users.txt")}, {"user", "import", csvFile, "--on-conflict", "merge"}, {"user", "import"}} {
		_, _, err := f.run("", args...)
		wantUsageError(t, err)
	}
	// Standard input, JSON Lines by default, and a dry run writes nothing.
	stdout = f.must(`{"username": "frank"}`+"\n", "user", "import", "-", "--dry-run")
	if !strings.Contains(stdout, "dry run") || !strings.Contains(stdout, ": 1 imported") {
		t.Errorf("dry run: %q", stdout)
	}
	if _, err := f.store().UserByName(t.Context(), "frank"); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Errorf("a dry run imported frank: %v", err)
	}
}

// TestImportManyRejections: a summary lists the first 1,000 rejections,
// by line, and counts all of them; the run is one audit event, by "cli".
func TestImportManyRejections(t *testing.T) {
	f := newFixture(t)
	lines := []string{`{"username": "first"}`}
	for i := range 1500 {
		lines = append(lines, fmt.Sprintf(`{"username": "u%d", "roles": ["has space %d"]}`, i, i))
	}
	lines = append(lines, `{"username": "last"}`)
	file := writeLines(t, t.TempDir(), "many.jsonl", lines...)
	stdout, _, err := f.run("", "user", "import", file, "--json")
	if err == nil {
		t.Fatal("rejections, yet success")
	}
	var sum struct {
		Imported, Rejected int
		Rejections         []struct{ Line int }
	}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 2 || sum.Rejected != 1500 || len(sum.Rejections) != 1000 || sum.Rejections[0].Line != 2 || sum.Rejections[999].Line != 1001 {
		t.Fatalf("imported %d, rejected %d, %d listed (%v ... %v)", sum.Imported, sum.Rejected, len(sum.Rejections), sum.Rejections[0], sum.Rejections[len(sum.Rejections)-1])
	}
	_, stderr, _ := f.run("", "user", "import", file)
	if !strings.Contains(stderr, "line 1001: roles[0]: a role is one word") || strings.Contains(stderr, "line 1002:") || !strings.Contains(stderr, "... and 500 more rejections") {
		t.Errorf("stderr ends %q", stderr[max(0, len(stderr)-300):])
	}
	var events []map[string]any
	json.Unmarshal([]byte(f.must("", "audit", "list", "--json")), &events)
	var imports []map[string]any
	for _, e := range events {
		if e["event"] == "users.imported" {
			imports = append(imports, e)
		}
	}
	if len(imports) != 2 || imports[0]["actor"] != "cli" || imports[0]["detail"] != "imported=2 updated=0 skipped=0 rejected=1500 on_conflict=skip" ||
		imports[1]["detail"] != "imported=0 updated=0 skipped=2 rejected=1500 on_conflict=skip" {
		t.Errorf("audit events %v", imports)
	}
}
