package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
)

// The web console's sign-ins and setup links (tokend.Store).

func (s *Store) CreateConsoleSession(ctx context.Context, cs *tokend.ConsoleSession) error {
	_, err := s.exec(ctx, "create console session", `INSERT INTO console_sessions (token_hash, user_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		cs.TokenHash, cs.UserID, cs.CreatedAt, cs.LastSeenAt, cs.ExpiresAt)
	return err
}

func (s *Store) ConsoleSession(ctx context.Context, tokenHash []byte) (*tokend.ConsoleSession, error) {
	return one(ctx, s, "read console session", func(row scanner) (*tokend.ConsoleSession, error) {
		cs := &tokend.ConsoleSession{}
		if err := row.Scan(&cs.TokenHash, &cs.UserID, &cs.CreatedAt, &cs.LastSeenAt, &cs.ExpiresAt); err != nil {
			return nil, err
		}
		cs.CreatedAt, cs.LastSeenAt, cs.ExpiresAt = cs.CreatedAt.UTC(), cs.LastSeenAt.UTC(), cs.ExpiresAt.UTC()
		return cs, nil
	}, `SELECT token_hash, user_id, created_at, last_seen_at, expires_at FROM console_sessions WHERE token_hash = $1`, tokenHash)
}

func (s *Store) TouchConsoleSession(ctx context.Context, tokenHash []byte, at time.Time) error {
	_, err := s.exec(ctx, "touch console session", `UPDATE console_sessions SET last_seen_at = $1 WHERE token_hash = $2 AND last_seen_at < $1`, at, tokenHash)
	return err
}

func (s *Store) EndConsoleSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.exec(ctx, "end console session", `DELETE FROM console_sessions WHERE token_hash = $1`, tokenHash)
	return err
}

func (s *Store) PurgeConsoleSessions(ctx context.Context, now time.Time, idle time.Duration) error {
	_, err := s.exec(ctx, "purge console sessions", `DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2`, now, now.Add(-idle))
	return err
}

func (s *Store) CreateSetupToken(ctx context.Context, tokenHash []byte, expiresAt time.Time) error {
	return s.inTx(ctx, "create setup token", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM console_setup WHERE expires_at <= now()`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO console_setup (token_hash, expires_at) VALUES ($1, $2)`, tokenHash, expiresAt)
		return err
	})
}

func (s *Store) UseSetupToken(ctx context.Context, tokenHash []byte, at time.Time) (time.Time, error) {
	var expires time.Time
	err := s.inTx(ctx, "use setup token", func(ctx context.Context, tx pgx.Tx) error {
		// The row lock of the DELETE makes a concurrent use of the same
		// token wait, then find nothing.
		err := tx.QueryRow(ctx, `DELETE FROM console_setup WHERE token_hash = $1 AND expires_at > $2 RETURNING expires_at`, tokenHash, at).Scan(&expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("use setup token")
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM console_setup`)
		return err
	})
	if err != nil {
		return time.Time{}, err
	}
	return expires.UTC(), nil
}

func (s *Store) Stats(ctx context.Context, now time.Time) (tokend.Stats, error) {
	return one(ctx, s, "count", func(row scanner) (tokend.Stats, error) {
		var st tokend.Stats
		err := row.Scan(&st.Users, &st.EndUsers, &st.Clients, &st.LiveSessions)
		return st, err
	}, `SELECT
		(SELECT COUNT(*) FROM users WHERE client_id = ''),
		(SELECT COUNT(*) FROM users WHERE client_id != ''),
		(SELECT COUNT(*) FROM clients),
		(SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > $1)`, now)
}
