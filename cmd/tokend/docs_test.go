package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the flag table of docs/configuration.md from serve's flags")

// repoRoot is where the repository's documents are, from this package.
const repoRoot = "../.."

const (
	flagsBegin = "<!-- flags:begin (generated: go test ./cmd/tokend -run TestConfigurationReference -update-docs) -->"
	flagsEnd   = "<!-- flags:end -->"
)

// flagTable is the configuration reference's table, made from serve's
// FlagSet: every flag, its environment twin, its default and its meaning.
func flagTable() string {
	var c serveConfig
	var cf configFlags
	fs := serveFlags(&c, &cf, io.Discard)
	var b strings.Builder
	b.WriteString("| Flag and config key | Environment | Default | Meaning |\n|---|---|---|---|\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := "(none)"
		if f.DefValue != "" {
			def = "`" + f.DefValue + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", f.Name, envName(f.Name), def, strings.ReplaceAll(f.Usage, "|", `\|`))
	})
	return b.String()
}

var flagRow = regexp.MustCompile("^\\| `--([a-z0-9-]+)` \\| `([A-Z0-9_]+)` \\| (\\(none\\)|`[^`]*`) \\|")

// TestConfigurationReference: docs/configuration.md lists every flag of
// `tokend serve` (so every config file key), with its environment twin and
// its default, and no flag that does not exist. When a flag is added or
// changed, regenerate the table with -update-docs.
func TestConfigurationReference(t *testing.T) {
	path := filepath.Join(repoRoot, "docs", "configuration.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, flagsBegin), strings.Index(doc, flagsEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q around the flag table", path, flagsBegin, flagsEnd)
	}
	if *updateDocs {
		doc = doc[:i+len(flagsBegin)] + "\n" + flagTable() + doc[j:]
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	documented := map[string][2]string{} // flag -> env, default
	for _, line := range strings.Split(doc[i:j], "\n") {
		if m := flagRow.FindStringSubmatch(line); m != nil {
			documented[m[1]] = [2]string{m[2], m[3]}
		}
	}
	var c serveConfig
	var cf configFlags
	fs := serveFlags(&c, &cf, io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		d, ok := documented[f.Name]
		def := "(none)"
		if f.DefValue != "" {
			def = "`" + f.DefValue + "`"
		}
		switch {
		case !ok:
			t.Errorf("--%s is missing from %s (go test ./cmd/tokend -run TestConfigurationReference -update-docs)", f.Name, path)
		case d[0] != envName(f.Name):
			t.Errorf("--%s: documented environment variable %s, want %s", f.Name, d[0], envName(f.Name))
		case d[1] != def:
			t.Errorf("--%s: documented default %s, want %s", f.Name, d[1], def)
		}
		delete(documented, f.Name)
	})
	for name := range documented {
		t.Errorf("%s documents --%s, which serve does not have", path, name)
	}

	// The page's example file is a valid one.
	_, example, ok := strings.Cut(doc, "```toml\n")
	example, _, _ = strings.Cut(example, "```")
	if !ok || example == "" {
		t.Fatalf("%s has no example file", path)
	}
	file := filepath.Join(t.TempDir(), "example.toml")
	os.WriteFile(file, []byte(example), 0o600)
	hermeticEnv(t)
	if _, errOut, err := runCLI(t, "", "config", "check", file); err != nil {
		t.Errorf("the example of %s does not check: %v %s", path, err, errOut)
	}
}

// dashboardMetrics returns the metric names the Grafana dashboard's queries use.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "query") {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	// A metric name in PromQL: an identifier not followed by "(" (a
	// function) and not inside a label matcher or a by/without clause.
	labels := regexp.MustCompile(`\{[^}]*\}|\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|"[^"]*"|\[[^\]]*\]`)
	ident := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	keywords := []string{"sum", "rate", "irate", "increase", "histogram_quantile", "max", "min", "avg", "count", "topk", "clamp_min", "and", "or", "unless", "by", "without", "time", "changes", "resets", "le", "delta", "deriv", "abs", "vector", "scalar", "bool", "offset", "label_replace", "sort_desc", "absent"}
	seen := map[string]bool{}
	labelValues := regexp.MustCompile(`label_values\(([^,)]+)(,[^)]*)?\)`)
	for _, e := range exprs {
		stripped := labels.ReplaceAllString(labelValues.ReplaceAllString(e, "$1"), " ")
		for _, loc := range ident.FindAllStringIndex(stripped, -1) {
			name := stripped[loc[0]:loc[1]]
			rest := strings.TrimLeft(stripped[loc[1]:], " ")
			if slices.Contains(keywords, name) || strings.HasPrefix(rest, "(") || (loc[0] > 0 && strings.ContainsAny(stripped[loc[0]-1:loc[0]], "0123456789.$")) {
				continue
			}
			seen[name] = true
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestGrafanaDashboardMetrics: docs/grafana-dashboard.json queries only
// metrics that a running tokend's /metrics exposes (after some traffic, so
// that every family has a sample).
func TestGrafanaDashboardMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	used := dashboardMetrics(t)
	if len(used) < 5 {
		t.Fatalf("the dashboard queries only %v", used)
	}
	s := startServer(t, t.TempDir())
	f := provisionOps(t, s, 1)
	s.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.svcID, f.svcSecret)
	s.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.svcID, "wrong")
	r := s.loginAs(f, f.users[0])
	s.refresh(r.str("refresh_token"), f.webID)
	s.post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {f.users[0]}, "password": {"wrong"}, "client_id": {f.webID}}, "", "")
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exposed := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		exposed[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	for _, m := range used {
		if !exposed[m] {
			t.Errorf("the dashboard queries %s, which /metrics does not expose", m)
		}
	}
	var tokendFamilies []string
	for m := range exposed {
		if strings.HasPrefix(m, "tokend_") {
			tokendFamilies = append(tokendFamilies, m)
		}
	}
	sort.Strings(tokendFamilies)
	for _, m := range tokendFamilies {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		if !slices.ContainsFunc(used, func(u string) bool { return strings.HasPrefix(u, base) }) {
			t.Logf("note: the dashboard does not chart %s", m)
		}
	}
	t.Logf("the dashboard queries %d metrics: %v", len(used), used)
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)(\s+"[^"]*")?\)`)

// TestDocsLinks: README.md and every page of docs/ link only to files of
// this repository that exist (no web address, no path that leaves the
// repository), and the README leads to docs/.
func TestDocsLinks(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if len(files) < 5 {
		t.Fatalf("docs/ holds %v", files)
	}
	files = append(files, filepath.Join(repoRoot, "README.md"))
	root, _ := filepath.Abs(repoRoot)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.HasPrefix(target, "#") {
				continue
			}
			if u, err := url.Parse(target); err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(target, "/") {
				t.Errorf("%s links outside the repository: %s", file, target)
				continue
			}
			p, _, _ := strings.Cut(target, "#")
			abs, _ := filepath.Abs(filepath.Join(filepath.Dir(file), p))
			if rel, err := filepath.Rel(root, abs); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s links outside the repository: %s", file, target)
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s links to %s, which does not exist", file, target)
			}
		}
		if strings.Contains(string(data), "shared/DESIGN.md") {
			t.Errorf("%s points at the design file outside the repository", file)
		}
	}
	readme, _ := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if !strings.Contains(string(readme), "](docs/") {
		t.Error("README.md does not link docs/")
	}
}
