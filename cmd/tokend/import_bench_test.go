package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestImportRate measures `tokend user import` of users with foreign
// hashes (every format of secret/testdata in turn, half with ids) into a
// new SQLite store and, with TOKEND_TEST_POSTGRES, a new PostgreSQL
// schema; then the same file again (all skipped). It runs only with
// TOKEND_BENCH_IMPORT_USERS set (say 100000), prints the rates and asserts
// nothing about them.
func TestImportRate(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TOKEND_BENCH_IMPORT_USERS"))
	if n <= 0 {
		t.Skip("set TOKEND_BENCH_IMPORT_USERS=100000 to measure the import rate")
	}
	pg := os.Getenv("TOKEND_TEST_POSTGRES")
	hermeticEnv(t)
	dir := t.TempDir()
	vs := loadVectors(t)
	file := filepath.Join(dir, "users.jsonl")
	out, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(out)
	for i := range n {
		v := vs[i%len(vs)]
		rec := map[string]any{"username": fmt.Sprintf("%s-%07d", v.Maker, i), "password_hash": v.Hash, "roles": []string{"imported"}, "created_at": "2020-01-02T03:04:05Z"}
		if i%2 == 0 {
			rec["id"] = strconv.Itoa(42 + i)
		}
		fmt.Fprintln(w, jsonLine(rec))
	}
	w.Flush()
	out.Close()
	st, _ := os.Stat(file)
	stores := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "tokend.db") },
		"postgres": func(t *testing.T) string {
			if pg == "" {
				t.Skip("TOKEND_TEST_POSTGRES is not set")
			}
			t.Setenv("TOKEND_TEST_POSTGRES", pg)
			return pgDSN(t)
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			db := stores[name](t)
			for _, run := range []string{"first run", "second run"} {
				start := time.Now()
				stdout, stderr, err := runCLI(t, "", "user", "import", file, "--allow-weak-hashes", "--db", db)
				elapsed := time.Since(start)
				if err != nil {
					t.Fatalf("%v\n%s\n%s", err, stdout, stderr)
				}
				fmt.Printf("import %s, %s: %d users (%.1f MiB) in %s: %.0f users/s; %s",
					name, run, n, float64(st.Size())/(1<<20), elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), strings.TrimPrefix(stdout, "import: "))
			}
		})
	}
}
