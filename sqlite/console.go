package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tokend/tokend"
)

// The web console's sign-ins and setup links (tokend.Store).

func (s *Store) CreateConsoleSession(ctx context.Context, cs *tokend.ConsoleSession) error {
	_, err := s.exec(ctx, `INSERT INTO console_sessions (token_hash, user_id, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		cs.TokenHash, cs.UserID, micro(cs.CreatedAt), micro(cs.LastSeenAt), micro(cs.ExpiresAt))
	return wrap("create console session", err)
}

func (s *Store) ConsoleSession(ctx context.Context, tokenHash []byte) (*tokend.ConsoleSession, error) {
	cs := &tokend.ConsoleSession{}
	var created, seen, expires int64
	err := s.row(ctx, `SELECT token_hash, user_id, created_at, last_seen_at, expires_at FROM console_sessions WHERE token_hash = ?`, tokenHash).
		Scan(&cs.TokenHash, &cs.UserID, &created, &seen, &expires)
	if err != nil {
		return nil, wrap("read console session", err)
	}
	cs.CreatedAt, cs.LastSeenAt, cs.ExpiresAt = fromMicro(created), fromMicro(seen), fromMicro(expires)
	return cs, nil
}

func (s *Store) TouchConsoleSession(ctx context.Context, tokenHash []byte, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE console_sessions SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at < ?`, micro(at), tokenHash, micro(at))
	return wrap("touch console session", err)
}

func (s *Store) EndConsoleSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.exec(ctx, `DELETE FROM console_sessions WHERE token_hash = ?`, tokenHash)
	return wrap("end console session", err)
}

func (s *Store) PurgeConsoleSessions(ctx context.Context, now time.Time, idle time.Duration) error {
	_, err := s.exec(ctx, `DELETE FROM console_sessions WHERE expires_at <= ? OR last_seen_at <= ?`, micro(now), micro(now.Add(-idle)))
	return wrap("purge console sessions", err)
}

func (s *Store) CreateSetupToken(ctx context.Context, tokenHash []byte, expiresAt time.Time) error {
	return s.inTx(ctx, "create setup token", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_setup WHERE expires_at <= ?`, micro(time.Now())); err != nil {
			return wrap("create setup token", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO console_setup (token_hash, expires_at) VALUES (?, ?)`, tokenHash, micro(expiresAt))
		return wrap("create setup token", err)
	})
}

func (s *Store) UseSetupToken(ctx context.Context, tokenHash []byte, at time.Time) (time.Time, error) {
	var expires int64
	err := s.inTx(ctx, "use setup token", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `DELETE FROM console_setup WHERE token_hash = ? AND expires_at > ? RETURNING expires_at`, tokenHash, micro(at)).Scan(&expires)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("use setup token")
		}
		if err != nil {
			return wrap("use setup token", err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM console_setup`)
		return wrap("use setup token", err)
	})
	if err != nil {
		return time.Time{}, err
	}
	return fromMicro(expires), nil
}

func (s *Store) Stats(ctx context.Context, now time.Time) (tokend.Stats, error) {
	var st tokend.Stats
	err := s.row(ctx, `SELECT
		(SELECT COUNT(*) FROM users WHERE client_id = ''),
		(SELECT COUNT(*) FROM users WHERE client_id != ''),
		(SELECT COUNT(*) FROM clients),
		(SELECT COUNT(*) FROM sessions WHERE revoked_at = 0 AND expires_at > ?)`, micro(now)).
		Scan(&st.Users, &st.EndUsers, &st.Clients, &st.LiveSessions)
	return st, wrap("count", err)
}
