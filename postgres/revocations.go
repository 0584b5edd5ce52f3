package postgres

import (
	"context"
	"time"

	"github.com/tokend/tokend"
)

// What the revocation feed reads: revoked tokens and sessions with their
// times, all of them or those a batch of changes names.

func (s *Store) RevokedTokens(ctx context.Context, now time.Time, jtis []string) ([]tokend.RevokedToken, error) {
	scan := func(row scanner) (tokend.RevokedToken, error) {
		var t tokend.RevokedToken
		err := row.Scan(&t.JTI, &t.ExpiresAt)
		t.ExpiresAt = t.ExpiresAt.UTC()
		return t, err
	}
	const query = `SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > $1`
	if jtis == nil {
		return all(ctx, s, "revoked tokens", scan, query, now)
	}
	return all(ctx, s, "revoked tokens", scan, query+` AND jti = ANY($2)`, now, storable(jtis))
}

func (s *Store) RevokedSessions(ctx context.Context, since time.Time, ids []string) ([]tokend.RevokedSession, error) {
	scan := func(row scanner) (tokend.RevokedSession, error) {
		var se tokend.RevokedSession
		err := row.Scan(&se.ID, &se.UserID, &se.RevokedAt, &se.ExpiresAt)
		se.RevokedAt, se.ExpiresAt = se.RevokedAt.UTC(), se.ExpiresAt.UTC()
		return se, err
	}
	const query = `SELECT id, user_id, revoked_at, expires_at FROM sessions WHERE revoked_at >= $1`
	if ids == nil {
		return all(ctx, s, "revoked sessions", scan, query, since)
	}
	return all(ctx, s, "revoked sessions", scan, query+` AND id = ANY($2)`, since, storable(ids))
}

// storable drops the keys PostgreSQL text cannot hold (they were never
// stored, so they match nothing), which would fail the whole statement.
func storable(keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !unstorable(k) {
			out = append(out, k)
		}
	}
	return out
}
