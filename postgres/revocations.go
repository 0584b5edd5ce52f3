package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
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

// Revoked access tokens.

func (s *Store) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return s.inTx(ctx, "revoke token", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING`, jti, expiresAt)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return s.recordChanges(ctx, tx, tokend.Change{Kind: tokend.ChangeToken, Ref: jti})
	})
}

func (s *Store) Revoked(ctx context.Context, now time.Time) (tokens, sessions []string, err error) {
	str := func(row scanner) (string, error) {
		var v string
		err := row.Scan(&v)
		return v, err
	}
	if tokens, err = all(ctx, s, "revoked tokens", str, `SELECT jti FROM revoked_tokens WHERE expires_at > $1`, now); err != nil {
		return nil, nil, err
	}
	// Every revoked session still stored, expired or not: its access
	// tokens may outlive it (PurgeRevokedSessions bounds the set).
	if sessions, err = all(ctx, s, "revoked sessions", str, `SELECT id FROM sessions WHERE revoked_at IS NOT NULL`); err != nil {
		return nil, nil, err
	}
	return tokens, sessions, nil
}

// PurgeRevokedSessions deletes in batches, as Purge does.
func (s *Store) PurgeRevokedSessions(ctx context.Context, expiredBefore time.Time) error {
	for {
		n, err := s.exec(ctx, "purge revoked sessions", `DELETE FROM sessions WHERE id IN
			(SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND expires_at < $1 LIMIT $2)`, expiredBefore, purgeBatch)
		if err != nil || n < purgeBatch {
			return err
		}
	}
}
