package adminapi_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

// TestUserPagesUnderInserts walks 2,500 users in pages while users are
// being created: no user is seen twice, and every user that existed when
// the walk began is seen.
func TestUserPagesUnderInserts(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 2,500 users")
	}
	eachStore(t, func(t *testing.T, open func(t *testing.T) tokend.Store) {
		store := open(t)
		e := newEnv(t, store)
		const n = 2500
		initial := map[string]bool{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		ids := make(chan int)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range ids {
					u := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: fmt.Sprintf("user-%05d", i), CreatedAt: time.Now()}
					if err := store.CreateUser(context.Background(), u); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					initial[u.ID] = true
					mu.Unlock()
				}
			}()
		}
		for i := range n {
			ids <- i
		}
		close(ids)
		wg.Wait()

		// Users keep coming through the API while the walk goes on.
		stop := make(chan struct{})
		var added atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := e.call("POST", "/admin/v1/users", fmt.Sprintf(`{"username": "late-%d"}`, i))
				if r.status != 201 {
					t.Errorf("create during the walk: %d %s", r.status, r.body)
					return
				}
				added.Add(1)
			}
		}()
		seen := map[string]bool{}
		last, cursor, pages := "", "", 0
		for {
			r := e.must(200, "GET", "/admin/v1/users?limit=100&cursor="+url.QueryEscape(cursor), "")
			pages++
			for _, u := range r.items() {
				id := u["id"].(string)
				if seen[id] {
					t.Fatalf("user %s seen twice", id)
				}
				if id <= last {
					t.Fatalf("ids out of order: %s after %s", id, last)
				}
				seen[id], last = true, id
			}
			if cursor = r.str("next_cursor"); cursor == "" {
				break
			}
			// Between two pages, a user through the API (its UUIDv7 goes
			// to the end) and one whose random id may land anywhere,
			// before the cursor too, as a user written by an older
			// version or another tool would: neither may shift a page.
			e.must(201, "POST", "/admin/v1/users", fmt.Sprintf(`{"username": "between-%d"}`, pages))
			if err := store.CreateUser(context.Background(), &tokend.User{ID: uuid.NewString(), Username: fmt.Sprintf("random-%d", pages), CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if pages > 200 {
				t.Fatal("the walk does not end")
			}
		}
		close(stop)
		<-done
		for id := range initial {
			if !seen[id] {
				t.Fatalf("user %s existed at the start and was not seen", id)
			}
		}
		if added.Load() == 0 {
			t.Fatal("no user was created during the walk")
		}
		t.Logf("%d pages, %d users seen, %d created during the walk", pages, len(seen), added.Load())
	})
}
