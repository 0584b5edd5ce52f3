package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend"
)

// stepRefresh is the whole refresh step in one statement, so one round trip
// and one commit (tokend.RefreshStep.Decide is the rule it spells):
//
//   - s reads the session and u its user, in the statement's snapshot, as
//     SessionByID and UserByID did;
//   - ok holds when the session belongs to the client and dialect, holds
//     every scope asked for, and the user is enabled and has not ended the
//     session's credentials since it began;
//   - adv is AdvanceSession's compare-and-swap, run only when ok: a
//     concurrent step that moved the counter first makes it re-read the
//     row (READ COMMITTED) and find the counter moved, so exactly one
//     advances. A user disabled, or whose password changed, after the
//     snapshot has had the session revoked in the same transaction: adv
//     finds it revoked, or that transaction waits for this one and revokes
//     the session after it, as with the separate statements before;
//   - touch sets last_refresh_at when the engine will refresh (adv moved,
//     or the generation presented is current with rotation off, or the
//     previous one within the grace window), unless another transaction
//     holds the user's row: SKIP LOCKED. A refresh of the same user
//     writing it at the same moment leaves a time within that moment,
//     and no step ever waits for the user's row. Waiting for it made
//     every refresh of one user queue behind the last one's commit, and
//     taking it after the session's row would close a deadlock with
//     DisableUser and SetUserPasswordEndSessions, which take the user's
//     row first.
const stepRefresh = `
WITH s AS (
	SELECT ` + sessionColumns + ` FROM sessions WHERE id = $1
), u AS (
	SELECT ` + userColumns + ` FROM users WHERE id = (SELECT user_id FROM s)
), ok AS (
	SELECT 1 FROM s, u
	WHERE s.client_id = $2 AND s.dialect = $3 AND NOT u.disabled
		AND (u.tokens_not_before IS NULL OR s.created_at >= u.tokens_not_before)
		AND $9 AND $4::text[] <@ string_to_array(s.scope, ' ')
), adv AS (
	UPDATE sessions SET counter = counter + 1, rotated_at = $5
	WHERE id = $1 AND $6 AND counter = $7 AND revoked_at IS NULL AND expires_at > $5
		AND EXISTS (SELECT 1 FROM ok)
	RETURNING 1
), touch AS (
	UPDATE users SET last_refresh_at = $5
	WHERE id = (
		SELECT users.id FROM users
		WHERE users.id = (SELECT id FROM u) AND EXISTS (SELECT 1 FROM ok) AND (
			EXISTS (SELECT 1 FROM adv) OR EXISTS (
				SELECT 1 FROM s WHERE s.revoked_at IS NULL AND s.expires_at > $5 AND (
					(NOT $6 AND s.counter = $7) OR
					($6 AND $8::bigint > 0 AND s.counter = $7 + 1 AND s.rotated_at >= $5 - $8::bigint * interval '1 microsecond'))))
		FOR NO KEY UPDATE OF users SKIP LOCKED)
	RETURNING 1
)
SELECT s.id, s.user_id, s.client_id, s.scope, s.dialect, s.counter, s.rotated_at, s.created_at, s.expires_at, s.revoked_at, s.revoke_reason,
	u.id, u.username, u.password_hash, u.roles, u.client_id, u.disabled, u.created_at, u.last_login_at, u.last_refresh_at, u.tokens_not_before, u.claims, u.version,
	EXISTS (SELECT 1 FROM adv)
FROM s LEFT JOIN u ON true`

// StepRefresh runs the refresh step in one statement (stepRefresh).
func (s *Store) StepRefresh(ctx context.Context, r tokend.RefreshStep) (*tokend.RefreshResult, error) {
	const op = "refresh step"
	if unstorable(r.SessionID) {
		return nil, notFound(op)
	}
	// A client id, dialect or scope that PostgreSQL text cannot hold is no
	// session's: the step reads, and changes nothing.
	clientID, dialect, scopes, match := r.ClientID, r.Dialect, r.Scopes, true
	if unstorable(clientID, dialect) || unstorable(scopes...) {
		clientID, dialect, scopes, match = "", "", nil, false
	}
	if scopes == nil {
		scopes = []string{}
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	var se tokend.Session
	var revoked pgtype.Timestamptz
	var uid, username, hash, uclient pgtype.Text
	var roles []string
	var disabled pgtype.Bool
	var created, login, refresh, notBefore pgtype.Timestamptz
	var claims []byte
	var version pgtype.Int8
	var advanced bool
	err := s.pool.QueryRow(ctx, stepRefresh, r.SessionID, clientID, dialect, scopes, r.At, r.Rotate, r.Counter, r.Grace.Microseconds(), match).Scan(
		&se.ID, &se.UserID, &se.ClientID, &se.Scope, &se.Dialect, &se.Counter, &se.RotatedAt, &se.CreatedAt, &se.ExpiresAt, &revoked, &se.RevokeReason,
		&uid, &username, &hash, &roles, &uclient, &disabled, &created, &login, &refresh, &notBefore, &claims, &version,
		&advanced)
	if err != nil {
		return nil, wrap(op, err)
	}
	se.RotatedAt, se.CreatedAt, se.ExpiresAt = se.RotatedAt.UTC(), se.CreatedAt.UTC(), se.ExpiresAt.UTC()
	se.RevokedAt = fromOpt(revoked)
	out := &tokend.RefreshResult{Session: &se, Advanced: advanced}
	if advanced {
		// The snapshot may predate the move of a concurrent step that
		// lost; the one that advanced saw the counter at r.Counter.
		se.Counter = r.Counter
	}
	if uid.Valid {
		u := &tokend.User{
			ID: uid.String, Username: username.String, PasswordHash: hash.String, Roles: fromList(roles),
			ClientID: uclient.String, Disabled: disabled.Bool, CreatedAt: created.Time.UTC(),
			LastLoginAt: fromOpt(login), LastRefreshAt: fromOpt(refresh), TokensNotBefore: fromOpt(notBefore),
			Version: version.Int64,
		}
		if u.Claims, err = tokend.DecodeClaims(claims); err != nil {
			return nil, wrap(op, fmt.Errorf("claims of user %s: %w", u.ID, err))
		}
		out.User = u
	}
	return out, nil
}
