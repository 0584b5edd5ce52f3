package adminapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/adminapi"
	"github.com/tokend/tokend/httpapi"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/tokendtest"
)

type vector struct{ Maker, Password, Hash string }

// vectors are hashes that the real libraries made (secret/testdata), one
// per maker.
func vectors(t *testing.T) map[string]vector {
	t.Helper()
	b, err := os.ReadFile("../secret/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var all []vector
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]vector{}
	for _, v := range all {
		if _, ok := out[v.Maker]; !ok {
			out[v.Maker] = v
		}
	}
	return out
}

// importReq posts a JSON Lines body to the import route with tok.
func (e *env) importReq(base, query, tok, contentType string, body io.Reader, length int64) resp {
	e.t.Helper()
	req, err := http.NewRequest("POST", base+"/admin/v1/users:import"+query, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", contentType)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return e.send(req)
}

// importLines imports lines as the admin and wants 200.
func (e *env) importLines(query string, lines ...string) importSummary {
	e.t.Helper()
	body := strings.Join(lines, "\n") + "\n"
	r := e.importReq(e.srv.URL, query, e.admin, "application/x-ndjson", strings.NewReader(body), int64(len(body)))
	if r.status != 200 {
		e.t.Fatalf("import: %d %s", r.status, r.body)
	}
	var s importSummary
	if err := json.Unmarshal(r.body, &s); err != nil {
		e.t.Fatal(err)
	}
	for _, l := range lines {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) != nil {
			continue
		}
		for _, k := range []string{"password_hash", "password"} {
			if v, _ := rec[k].(string); v != "" && strings.Contains(string(r.body), v) {
				e.t.Fatalf("the answer shows a %s: %s", k, r.body)
			}
		}
	}
	return s
}

type importSummary struct {
	Imported, Updated, Skipped, Rejected int
	Rejections                           []struct {
		Line   int
		Reason string
	}
	DryRun bool `json:"dry_run"`
}

func (s importSummary) counts() [4]int { return [4]int{s.Imported, s.Updated, s.Skipped, s.Rejected} }

func record(fields map[string]any) string {
	b, _ := json.Marshal(fields)
	return string(b)
}

// TestImportUsers: POST /admin/v1/users:import end to end: users with
// foreign hashes come in with their ids and dates and log in at once (the
// hash upgraded), a second run skips them, update and dry run do what
// they say, rejections name their lines, and the run is one audit event.
func TestImportUsers(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		v := vectors(t)
		bc, dj, md5 := v["bcrypt"], v["django-pbkdf2-sha256"], v["md5"]
		lines := []string{
			record(map[string]any{"id": "42", "username": "alice", "password_hash": bc.Hash, "roles": []string{"staff"},
				"claims": map[string]any{"dept": "ops"}, "created_at": "2019-05-06T07:08:09Z", "last_login_at": "2024-01-02T03:04:05Z"}),
			record(map[string]any{"username": "bob", "password_hash": dj.Hash}),
			`{"username": "carol", "password": "carol's plaintext"}`,
			`{"username": "dave", "password_hash": "` + bc.Hash[:30], // cut short: malformed JSON
			record(map[string]any{"username": "erin", "password_hash": md5.Hash}),
		}
		s := e.importLines("", lines...)
		if s.counts() != [4]int{3, 0, 0, 2} || s.DryRun {
			t.Fatalf("summary %+v", s)
		}
		if len(s.Rejections) != 2 || s.Rejections[0].Line != 4 || s.Rejections[1].Line != 5 ||
			!strings.Contains(s.Rejections[0].Reason, "malformed JSON") || !strings.Contains(s.Rejections[1].Reason, "weak md5") {
			t.Errorf("rejections %+v", s.Rejections)
		}
		u := e.must(200, "GET", "/admin/v1/users/42", "").json()
		if u["username"] != "alice" || u["created_at"] != "2019-05-06T07:08:09Z" || u["last_login_at"] != "2024-01-02T03:04:05Z" ||
			fmt.Sprint(u["roles"]) != "[staff]" || fmt.Sprint(u["claims"]) != "map[dept:ops]" {
			t.Errorf("user 42: %v", u)
		}
		// An imported id is no username for anyone else, here either.
		for _, r := range []resp{
			e.call("POST", "/admin/v1/users", `{"username": "42"}`),
			e.call("PATCH", "/admin/v1/users/"+e.createUser(`{"username": "zoe"}`), `{"username": "42"}`),
		} {
			if r.status != 409 || !strings.Contains(string(r.body), "the id of another user") {
				t.Errorf("username 42: %d %s", r.status, r.body)
			}
		}
		// They log in at once, on this node; the foreign hash becomes argon2id.
		for _, c := range []struct{ name, pw, id string }{{"alice", bc.Password, "42"}, {"bob", dj.Password, ""}, {"carol", "carol's plaintext", ""}} {
			if r := e.login(c.name, c.pw, ""); r.status != 200 {
				t.Fatalf("login as %s: %d %s", c.name, r.status, r.body)
			}
			got, err := e.store.UserByName(t.Context(), c.name)
			if err != nil || !strings.HasPrefix(got.PasswordHash, "$argon2id$") || (c.id != "" && got.ID != c.id) {
				t.Errorf("%s after login: %v %.12s %s", c.name, err, got.PasswordHash, got.ID)
			}
		}

		// Again: skipped. With update: roles change (no hash given: the
		// upgraded one stays).
		if s := e.importLines("", lines...); s.counts() != [4]int{0, 0, 3, 2} {
			t.Errorf("second run: %+v", s)
		}
		s = e.importLines("?on_conflict=update", `{"id": "42", "username": "alice", "roles": ["staff", "admin"]}`)
		if s.counts() != [4]int{0, 1, 0, 0} {
			t.Errorf("update: %+v", s)
		}
		if u := e.must(200, "GET", "/admin/v1/users/42", "").json(); fmt.Sprint(u["roles"]) != "[staff admin]" {
			t.Errorf("roles after update: %v", u["roles"])
		}
		if r := e.login("alice", bc.Password, ""); r.status != 200 {
			t.Errorf("login after an update that gave no hash: %d", r.status)
		}
		// on_conflict=fail: an existing user is a rejection.
		if s := e.importLines("?on_conflict=fail", `{"username": "bob"}`); s.counts() != [4]int{0, 0, 0, 1} || !strings.Contains(s.Rejections[0].Reason, "already exists") {
			t.Errorf("fail: %+v", s)
		}
		// A dry run tells and writes nothing; weak hashes when allowed.
		if s := e.importLines("?dry_run=true&allow_weak_hashes=true", lines[4], `{"username": "bob"}`); s.counts() != [4]int{1, 0, 1, 0} || !s.DryRun {
			t.Errorf("dry run: %+v", s)
		}
		if _, err := e.store.UserByName(t.Context(), "erin"); tokend.ErrorCode(err) != tokend.ENOTFOUND {
			t.Errorf("a dry run created erin: %v", err)
		}
		if s := e.importLines("?allow_weak_hashes=true", lines[4]); s.counts() != [4]int{1, 0, 0, 0} {
			t.Errorf("weak hashes allowed: %+v", s)
		}
		if r := e.login("erin", md5.Password, ""); r.status != 200 {
			t.Errorf("erin's login: %d", r.status)
		}

		// One audit event per run (the dry run is none), naming the caller.
		events := e.must(200, "GET", "/admin/v1/audit?event=users.imported&limit=100", "").items()
		if len(events) != 5 {
			t.Fatalf("%d users.imported events, want 5: %v", len(events), events)
		}
		first := events[len(events)-1]
		if first["actor"] != "client:"+e.adminClient || first["detail"] != "imported=3 updated=0 skipped=0 rejected=2 on_conflict=skip" {
			t.Errorf("event %v", first)
		}
	})
}

// TestImportRequests: the route's refusals, each in its documented shape.
func TestImportRequests(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	body := `{"username": "zed"}` + "\n"
	post := func(query, tok, ct string) resp {
		return e.importReq(e.srv.URL, query, tok, ct, strings.NewReader(body), int64(len(body)))
	}
	for _, c := range []struct {
		name, query, tok, ct string
		status               int
		fields               []string
	}{
		{"no token", "", "", "application/x-ndjson", 401, nil},
		{"read scope", "", e.reader, "application/x-ndjson", 403, nil},
		{"another scope", "", e.other, "application/jsonl", 403, nil},
		{"JSON", "", e.admin, "application/json", 415, nil},
		{"no type", "", e.admin, "", 415, nil},
		{"bad on_conflict", "?on_conflict=merge", e.admin, "application/x-ndjson", 400, []string{"on_conflict"}},
		{"bad flags", "?dry_run=yes&allow_weak_hashes=1", e.admin, "application/x-ndjson", 400, []string{"dry_run", "allow_weak_hashes"}},
	} {
		r := post(c.query, c.tok, c.ct)
		if r.status != c.status || r.header.Get("Content-Type") != "application/problem+json" || !slices.Equal(r.fields(), c.fields) {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
		if c.status == 403 && !strings.Contains(r.header.Get("WWW-Authenticate"), `scope="tokend.admin"`) {
			t.Errorf("%s: WWW-Authenticate %q", c.name, r.header.Get("WWW-Authenticate"))
		}
	}
	if _, err := e.store.UserByName(t.Context(), "zed"); tokend.ErrorCode(err) != tokend.ENOTFOUND {
		t.Errorf("a refused request imported zed: %v", err)
	}
	if r := e.call("GET", "/admin/v1/users:import", ""); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q", r.status, r.header.Get("Allow"))
	}
	// The route does not shadow the users' own paths.
	e.createUser(`{"username": "yan"}`)
	if r := e.call("GET", "/admin/v1/users?q=yan", ""); r.status != 200 || len(r.items()) != 1 {
		t.Errorf("GET /admin/v1/users: %d %s", r.status, r.body)
	}
}

// TestImportStreams: a body of several batches sent in chunks is read as
// it comes; over the limit, the records before it are imported and the
// rest is one rejection, and a body that says it is over the limit is
// refused before anything is read.
func TestImportStreams(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		e := newEnv(t, open(t))
		const n = 1234
		pr, pw := io.Pipe()
		go func() {
			for i := range n {
				fmt.Fprintf(pw, `{"id": "%d", "username": "user-%04d", "roles": ["r%d"]}`+"\n", 1000+i, i, i%7)
			}
			pw.Close()
		}()
		r := e.importReq(e.srv.URL, "", e.admin, "application/x-ndjson", pr, -1)
		if r.status != 200 || !strings.Contains(string(r.body), fmt.Sprintf(`"imported":%d`, n)) {
			t.Fatalf("streamed import: %d %s", r.status, r.body)
		}
		if got := e.must(200, "GET", "/admin/v1/users/2233", "").json(); got["username"] != "user-1233" {
			t.Errorf("the last user: %v", got)
		}

		// A server whose read and write timeouts are short: an import
		// whose body keeps coming takes longer, and still goes through.
		strict := httptest.NewUnstartedServer(e.srv.Config.Handler)
		strict.Config.ReadTimeout, strict.Config.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
		strict.Start()
		defer strict.Close()
		pr, pw = io.Pipe()
		go func() {
			for i := range 8 {
				time.Sleep(100 * time.Millisecond)
				fmt.Fprintf(pw, `{"username": "slow-%d"}`+"\n", i)
			}
			pw.Close()
		}()
		if r := e.importReq(strict.URL, "", e.admin, "application/x-ndjson", pr, -1); r.status != 200 || !strings.Contains(string(r.body), `"imported":8`) {
			t.Errorf("a slow body past the server's timeouts: %d %s", r.status, r.body)
		}

		// A node whose import limit is 4 KiB.
		log := slog.New(slog.DiscardHandler)
		api := &httpapi.Server{Engine: e.engine, Store: e.store, Metrics: metrics.New(), Log: log,
			Routes: []httpapi.Routes{&adminapi.API{Engine: e.engine, Manager: e.engine.Manager(), ImportMaxBytes: 4096}}}
		small := httptest.NewServer(tokendtest.CheckHandler(t, api.Handler()))
		defer small.Close()
		var body strings.Builder
		for i := range 300 {
			fmt.Fprintf(&body, `{"username": "small-%03d"}`+"\n", i) // 26 bytes a line
		}
		over := e.importReq(small.URL, "", e.admin, "application/x-ndjson", strings.NewReader(body.String()), int64(body.Len()))
		if over.status != 413 || over.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("a body that says it is over: %d %s", over.status, over.body)
		}
		r = e.importReq(small.URL, "", e.admin, "application/x-ndjson", io.MultiReader(strings.NewReader(body.String())), -1)
		var s importSummary
		json.Unmarshal(r.body, &s)
		if r.status != 200 || s.Imported < 100 || s.Imported > 4096/26 || s.Rejected != 1 ||
			s.Rejections[0].Line != s.Imported+1 || !strings.Contains(s.Rejections[0].Reason, "over the import limit") {
			t.Fatalf("a chunked body over the limit: %d %s", r.status, r.body)
		}
		if _, err := e.store.UserByName(t.Context(), fmt.Sprintf("small-%03d", s.Imported-1)); err != nil {
			t.Errorf("the last user before the limit: %v", err)
		}
	})
}
