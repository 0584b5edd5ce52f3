package grant

import (
	"context"
	"fmt"

	"github.com/tokend/tokend"
)

// What the engine keeps in memory so that checking a token costs no store
// read: revoked access tokens (until they expire) and sessions (until
// their last access token has expired, PurgeRevokedSessions) and users,
// beside the client apps and the key ring. Every change made elsewhere
// reaches them through the store's change feed (Sync); a change made by
// this engine is applied at once.

// loadRevoked replaces the revoked sets with the store's, which also drops
// entries that expired or were purged.
func (e *Engine) loadRevoked(ctx context.Context) error {
	e.mu.RLock()
	seq := e.seq
	e.mu.RUnlock()
	tokens, sessions, err := e.store.Revoked(ctx, e.now())
	if err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	rt := make(map[string]struct{}, len(tokens))
	for _, j := range tokens {
		rt[j] = struct{}{}
	}
	rs := make(map[string]struct{}, len(sessions))
	for _, s := range sessions {
		rs[s] = struct{}{}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.seq != seq {
		// Changes were applied meanwhile: keep them, they may be newer
		// than what was read.
		for j := range e.revokedTokens {
			rt[j] = struct{}{}
		}
		for s := range e.revokedSessions {
			rs[s] = struct{}{}
		}
	}
	e.revokedTokens, e.revokedSessions = rt, rs
	return nil
}

func (e *Engine) tokenRevoked(jti string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	_, ok := e.revokedTokens[jti]
	return ok
}

func (e *Engine) sessionRevoked(sid string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	_, ok := e.revokedSessions[sid]
	return ok
}

func (e *Engine) markTokenRevoked(jti string) {
	e.mu.Lock()
	e.revokedTokens[jti] = struct{}{}
	e.mu.Unlock()
}

func (e *Engine) markSessionRevoked(sid string) {
	e.mu.Lock()
	e.revokedSessions[sid] = struct{}{}
	e.mu.Unlock()
}

// user returns a user by id, from the cache when it can; nil if there is none.
func (e *Engine) user(ctx context.Context, id string) (*tokend.User, error) {
	e.mu.RLock()
	u, ok := e.users[id]
	seq := e.seq
	e.mu.RUnlock()
	if ok {
		return u, nil
	}
	u, err := e.store.UserByID(ctx, id)
	if err != nil {
		if tokend.ErrorCode(err) == tokend.ENOTFOUND {
			return nil, nil
		}
		return nil, err
	}
	e.mu.Lock()
	if e.seq == seq && len(e.users) < maxCachedUsers {
		e.users[id] = u
	}
	e.mu.Unlock()
	return u, nil
}

// maxCachedUsers bounds the user cache; past it users are read each time.
const maxCachedUsers = 100_000
