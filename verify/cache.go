package verify

import (
	"sync"
	"sync/atomic"

	"github.com/go-jose/go-jose/v4"
)

// tokenCache remembers verified tokens by their exact text: the signature
// and the claims that never change were checked for those bytes, so the
// same bytes need only the checks that change with time. An entry holds
// the key that verified it and counts only while the key set still holds
// that very key under its kid.
type tokenCache struct {
	max  int
	m    sync.Map // raw token -> *cached
	size atomic.Int64
	mu   sync.Mutex // one eviction at a time
}

type cached struct {
	kid    string
	key    *jose.JSONWebKey
	claims Claims
}

// get returns a copy of the claims of raw if it was verified with a key
// the key set still holds.
func (t *tokenCache) get(raw string, keys *keyCache) (*Claims, bool) {
	e, ok := t.m.Load(raw)
	if !ok {
		return nil, false
	}
	en := e.(*cached)
	if keys.lookup(en.kid) != en.key {
		if _, loaded := t.m.LoadAndDelete(raw); loaded {
			t.size.Add(-1)
		}
		return nil, false
	}
	c := en.claims
	return &c, true
}

// put remembers a verified token, first evicting about an eighth of the
// entries (whichever the map yields first) when full.
func (t *tokenCache) put(raw, kid string, key *jose.JSONWebKey, c *Claims) {
	if t.size.Load() >= int64(t.max) {
		t.mu.Lock()
		if n := t.size.Load(); n >= int64(t.max) {
			drop := max(n/8, 1)
			t.m.Range(func(k, _ any) bool {
				if _, loaded := t.m.LoadAndDelete(k); loaded {
					t.size.Add(-1)
					drop--
				}
				return drop > 0
			})
		}
		t.mu.Unlock()
	}
	if _, loaded := t.m.LoadOrStore(raw, &cached{kid: kid, key: key, claims: *c}); !loaded {
		t.size.Add(1)
	}
}
