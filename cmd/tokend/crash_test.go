package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// crashSession is what the test knows of one login session: the newest
// refresh token a response confirmed, and whether a refresh was in flight
// when the server died (then the store may be one step further).
type crashSession struct {
	rt        string
	counter   int64
	uncertain bool
	access    string
}

// crashLedger holds every operation whose response (or exit status) said it
// succeeded.
type crashLedger struct {
	mu        sync.Mutex
	sessions  map[string]*crashSession
	users     []string
	clients   []string
	rotations int
	secret    string // the newest confirmed secret of the svc client
	confirmed int    // operations confirmed so far
	cliFailed []string
}

// TestCrashLoop kills `tokend serve` with SIGKILL 20 times in a row while
// logins, refreshes and CLI changes run against its SQLite store, and after
// each kill checks the file (integrity, nothing half-written) and that
// every operation that was confirmed is there; after each restart, that the
// server works from it (confirmed secrets, refresh tokens and access
// tokens). The even rounds run with --sqlite-synchronous normal, the odd
// ones with full.
func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary 21 times")
	}
	const kills = 20
	start := time.Now()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tokend.db")
	s := startServer(t, dir, "--issuer", opsIssuer)
	f := provisionOps(t, s, 3)
	led := &crashLedger{sessions: map[string]*crashSession{}, secret: f.svcSecret}
	kids := map[string]bool{}
	var checked, lost int

	for round := 0; ; round++ {
		if round > 0 {
			mode := []string{"normal", "full"}[round%2]
			s = startServer(t, dir, "--issuer", opsIssuer, "--sqlite-synchronous", mode)
			var integrity string
			if err := openDB(t, dbPath).QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
				t.Fatalf("integrity check after restart %d: %q %v", round, integrity, err)
			}
			checked += afterRestart(t, s, f, led)
		}
		if round == kills {
			break
		}
		runUntilKilled(t, s, f, led, time.Duration(150+rand.IntN(250))*time.Millisecond)
		c, l := checkStore(t, dbPath, f, led, kids)
		checked += c
		lost += l
		if t.Failed() {
			t.Fatalf("round %d failed; logs of the killed server:\n%s", round, s.Logs())
		}
	}
	led.mu.Lock()
	defer led.mu.Unlock()
	if len(led.cliFailed) > 0 {
		t.Errorf("CLI commands failed during the load: %v", led.cliFailed)
	}
	if led.confirmed < kills*10 {
		t.Errorf("only %d operations confirmed in %d rounds: the load did not run", led.confirmed, kills)
	}
	t.Logf("crash loop: %d kills, %d confirmed operations (%d sessions, %d users, %d clients, %d secret rotations), %d checks of them, %d lost, in %s",
		kills, led.confirmed, len(led.sessions), len(led.users), len(led.clients), led.rotations, checked, lost, time.Since(start).Round(100*time.Millisecond))
}

// runUntilKilled runs logins, refreshes and CLI changes against s for d,
// then SIGKILLs s in the middle of them, and waits for the load to stop.
func runUntilKilled(t *testing.T, s *server, f opsFixture, led *crashLedger, d time.Duration) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Each worker refreshes sessions of its own (one refresher per
	// session), some carried over from the rounds before.
	const workers = 3
	pools := make([][]string, workers)
	led.mu.Lock()
	i := 0
	for sid, cs := range led.sessions {
		if w := i % workers; !cs.uncertain && len(pools[w]) < 8 {
			pools[w] = append(pools[w], sid)
			i++
		}
	}
	led.mu.Unlock()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := f.users[w%len(f.users)]
			mine := pools[w]
			for {
				select {
				case <-stop:
					return
				default:
				}
				if len(mine) < 4 || rand.IntN(3) == 0 {
					r := s.loginAs(f, user)
					if r.err != nil || r.status != 200 {
						continue
					}
					sid, ctr := rtSession(t, r.str("refresh_token"))
					led.mu.Lock()
					led.sessions[sid] = &crashSession{rt: r.str("refresh_token"), counter: ctr, access: r.str("access_token")}
					led.confirmed++
					led.mu.Unlock()
					mine = append(mine, sid)
					continue
				}
				i := rand.IntN(len(mine))
				led.mu.Lock()
				cs := led.sessions[mine[i]]
				rt := cs.rt
				led.mu.Unlock()
				r := s.refresh(rt, f.webID)
				led.mu.Lock()
				switch {
				case r.err != nil: // the server died with the request in flight
					cs.uncertain = true
					mine = append(mine[:i], mine[i+1:]...)
				case r.status == 200:
					_, cs.counter = rtSession(t, r.str("refresh_token"))
					cs.rt, cs.access = r.str("refresh_token"), r.str("access_token")
					led.confirmed++
				default:
					t.Errorf("refresh of a confirmed token refused: %d %v", r.status, r.body)
					mine = append(mine[:i], mine[i+1:]...)
				}
				led.mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() { // CLI changes, by other processes, while the server runs and dies
		defer wg.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			var r binResult
			var args []string
			switch n % 3 {
			case 0:
				led.mu.Lock()
				name := fmt.Sprintf("crash-user-%d", len(led.users))
				led.mu.Unlock()
				args = append([]string{"user", "add", name, "--password-stdin", "--db", s.db}, cheapArgon...)
				if r = runBinary(t, s.bin, nil, "pw\n", args...); r.code == 0 {
					led.mu.Lock()
					led.users = append(led.users, name)
					led.confirmed++
					led.mu.Unlock()
				}
			case 1:
				args = []string{"client", "rotate-secret", f.svcID, "--json", "--db", s.db}
				if r = runBinary(t, s.bin, nil, "", args...); r.code == 0 {
					var m map[string]string
					if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m["client_secret"] == "" {
						t.Errorf("rotate-secret output %q", r.stdout)
					}
					led.mu.Lock()
					led.secret = m["client_secret"]
					led.rotations++
					led.confirmed++
					led.mu.Unlock()
				}
			case 2:
				args = []string{"client", "add", fmt.Sprintf("crash-app-%d", n), "--json", "--db", s.db}
				if r = runBinary(t, s.bin, nil, "", args...); r.code == 0 {
					var m map[string]string
					json.Unmarshal([]byte(r.stdout), &m)
					led.mu.Lock()
					led.clients = append(led.clients, m["client_id"])
					led.confirmed++
					led.mu.Unlock()
				}
			}
			if r.code != 0 {
				led.mu.Lock()
				led.cliFailed = append(led.cliFailed, fmt.Sprintf("%v: exit %d: %s", args[:2], r.code, r.stderr))
				led.mu.Unlock()
			}
		}
	}()
	// Kill after d, once the load has confirmed something this round (a
	// busy machine may take longer to get going; at most 10 s more).
	led.mu.Lock()
	before := led.confirmed
	led.mu.Unlock()
	time.Sleep(d)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		led.mu.Lock()
		n := led.confirmed - before
		led.mu.Unlock()
		if n >= 10 {
			break
		}
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	close(stop)
	wg.Wait()
}

// checkStore opens the killed server's file and checks it: integrity,
// nothing half-written, every confirmed operation present. It returns how
// many confirmed operations it checked, and how many of them it did not
// find.
func checkStore(t *testing.T, dbPath string, f opsFixture, led *crashLedger, kids map[string]bool) (checked, lost int) {
	t.Helper()
	db := openDB(t, dbPath)
	defer db.Close()
	var integrity string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity check after a kill: %q %v", integrity, err)
	}
	for what, query := range map[string]string{
		"sessions without their user":        `SELECT COUNT(*) FROM sessions WHERE user_id NOT IN (SELECT id FROM users)`,
		"sessions without their client":      `SELECT COUNT(*) FROM sessions WHERE client_id <> '' AND client_id NOT IN (SELECT id FROM clients)`,
		"end users without their client app": `SELECT COUNT(*) FROM users WHERE client_id <> '' AND client_id NOT IN (SELECT id FROM clients)`,
		"versions recorded twice":            `SELECT COUNT(*) - COUNT(DISTINCT version) FROM schema_version`,
	} {
		if n := queryInt(t, db, query); n != 0 {
			t.Errorf("%d %s", n, what)
		}
	}
	led.mu.Lock()
	defer led.mu.Unlock()
	miss := func(format string, args ...any) {
		t.Errorf("lost: "+format, args...)
		lost++
	}
	for _, u := range led.users {
		if queryInt(t, db, `SELECT COUNT(*) FROM users WHERE username = ?`, u) != 1 {
			miss("user %s", u)
		}
		checked++
	}
	for _, c := range led.clients {
		if queryInt(t, db, `SELECT COUNT(*) FROM clients WHERE id = ?`, c) != 1 {
			miss("client %s", c)
		}
		checked++
	}
	// The CLI is never killed, so every rotation it made is confirmed:
	// as many secret_rotated events as confirmed rotations, no more, no less.
	if n := queryInt(t, db, `SELECT COUNT(*) FROM audit WHERE event = 'client.secret_rotated' AND subject = ?`, f.svcID); n != led.rotations {
		t.Errorf("%d client.secret_rotated events for %d confirmed rotations", n, led.rotations)
	}
	checked += led.rotations
	for sid, cs := range led.sessions {
		var counter, revoked int64
		err := db.QueryRow(`SELECT counter, revoked_at FROM sessions WHERE id = ?`, sid).Scan(&counter, &revoked)
		switch {
		case err == sql.ErrNoRows:
			miss("session %s", sid)
		case err != nil:
			t.Fatal(err)
		case counter < cs.counter:
			miss("session %s is at refresh %d, a response confirmed %d", sid, counter, cs.counter)
		case !cs.uncertain && counter != cs.counter:
			t.Errorf("session %s is at refresh %d, but only %d were made", sid, counter, cs.counter)
		case cs.uncertain && counter > cs.counter+1:
			t.Errorf("session %s is at refresh %d, at most %d were made", sid, counter, cs.counter+1)
		case revoked != 0:
			t.Errorf("session %s was revoked", sid)
		}
		checked += 1 + int(cs.counter)
	}
	rows, err := db.Query(`SELECT kid FROM signing_keys`)
	if err != nil {
		t.Fatal(err)
	}
	now := map[string]bool{}
	for rows.Next() {
		var kid string
		rows.Scan(&kid)
		now[kid] = true
	}
	rows.Close()
	for kid := range kids {
		if !now[kid] {
			miss("signing key %s", kid)
		}
	}
	for kid := range now {
		kids[kid] = true
	}
	if len(kids) == 0 {
		t.Error("no signing key in the store")
	}
	return checked, lost
}

// afterRestart checks that a restarted server works from what the store
// kept: the newest confirmed client secret, the newest confirmed refresh
// token of every session no refresh was in flight for, and their newest
// access tokens. It returns how many confirmed operations it checked.
func afterRestart(t *testing.T, s *server, f opsFixture, led *crashLedger) int {
	t.Helper()
	led.mu.Lock()
	defer led.mu.Unlock()
	checked := 0
	if r := s.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, f.svcID, led.secret); r.status != 200 {
		t.Errorf("the newest confirmed secret does not work after a restart: %d %v", r.status, r.body)
	}
	checked++
	n := 0
	for sid, cs := range led.sessions {
		if cs.uncertain || n >= 24 { // a sample bounds the time
			continue
		}
		n++
		in := s.post("/oauth2/introspect", url.Values{"token": {cs.access}}, f.svcID, led.secret)
		if in.body["active"] != true {
			t.Errorf("a confirmed access token of session %s is not active after a restart: %v", sid, in.body)
		}
		r := s.refresh(cs.rt, f.webID)
		if r.status != 200 {
			t.Errorf("the newest confirmed refresh token of session %s is refused after a restart: %d %v", sid, r.status, r.body)
			continue
		}
		_, cs.counter = rtSession(t, r.str("refresh_token"))
		cs.rt, cs.access = r.str("refresh_token"), r.str("access_token")
		checked += 2
	}
	return checked
}
