package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestTaikiEndUserQuotaAcrossNodes: the per-app cap on end users and their
// creation rate hold when the requests are spread over two nodes on one
// PostgreSQL database (--taiki-max-users-per-app, --taiki-user-rate).
func TestTaikiEndUserQuotaAcrossNodes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flags     []string
		before    int // new end users created one by one first
		wantMore  int // of 50 concurrent requests, how many get a new end user
		wantError string
	}{
		{"cap", []string{"--taiki-max-users-per-app", "10", "--taiki-user-rate", "0"}, 9, 1,
			"This API key has reached its limit of Taiki users"},
		{"rate", []string{"--taiki-user-rate", "7"}, 0, 7,
			"Too many new Taiki users for this API key, retry later"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgDSN(t)
			args := append([]string{"--issuer", clusterIssuer, "--db", dsn, "--dialects", "taiki"}, tc.flags...)
			nodes := []*server{startServer(t, t.TempDir(), args...), startServer(t, t.TempDir(), args...)}
			var app map[string]string
			json.Unmarshal([]byte(nodes[0].cli(t, "", "client", "add", "app", "--grant", "client_credentials", "--json")), &app)
			body, _ := json.Marshal(map[string]string{"api_key": app["client_id"], "api_secret": app["client_secret"]})
			newUser := func(s *server) httpResult {
				req, _ := http.NewRequest("POST", "http://"+s.addr+"/api/token", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				return do(req)
			}
			for i := range tc.before {
				if r := newUser(nodes[i%2]); r.status != 200 {
					t.Fatalf("end user %d: %d %v %v", i+1, r.status, r.body, r.err)
				}
			}
			results := make([]httpResult, 50)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range results {
				wg.Go(func() {
					<-start
					results[i] = newUser(nodes[i%2])
				})
			}
			close(start)
			wg.Wait()
			ok := 0
			for _, r := range results {
				switch {
				case r.status == 200 && r.str("taiki_user_id") != "":
					ok++
				case r.status == 429 && r.str("error") == "too_many_requests" && r.str("error_description") == tc.wantError && r.header.Get("Retry-After") != "":
				default:
					t.Fatalf("answer %d %v %v", r.status, r.body, r.err)
				}
			}
			if ok != tc.wantMore {
				t.Fatalf("%d of 50 concurrent requests on two nodes got a new end user, want %d", ok, tc.wantMore)
			}
		})
	}
}
