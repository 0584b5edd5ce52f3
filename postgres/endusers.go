package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
)

// End users of client apps, bounded (tokend.EndUserQuota). The app's row
// in end_user_counts is the lock: the conditional increment takes it, so
// concurrent creations for one app, on any node, run one after another,
// and each one's rate check (a statement of its own, under READ COMMITTED)
// sees every creation committed before it.

// bumpEndUsers counts one more end user of clientID, if the app has fewer
// than max (0: no cap); it reports whether it did.
func bumpEndUsers(ctx context.Context, tx pgx.Tx, clientID string, max int) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO end_user_counts (client_id, users) VALUES ($1, 1)
		ON CONFLICT (client_id) DO UPDATE SET users = end_user_counts.users + 1
		WHERE $2::bigint = 0 OR end_user_counts.users < $2::bigint`, clientID, max)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// errQuota rolls back a creation that the quota refuses.
var errQuota = errors.New("end user quota")

func (s *Store) CreateEndUser(ctx context.Context, u *tokend.User, q tokend.EndUserQuota) (*tokend.EndUserRefusal, error) {
	if u.ClientID == "" {
		return nil, tokend.Errorf(tokend.EINVALID, "an end user needs a client app")
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	var refusal *tokend.EndUserRefusal
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		ok, err := bumpEndUsers(ctx, tx, u.ClientID, q.Max)
		if err != nil {
			return err
		}
		if !ok {
			refusal = &tokend.EndUserRefusal{Full: true}
			return errQuota
		}
		if q.Rate > 0 {
			// The Rate-th newest creation within the window, if there is
			// one: then the rate is spent until it leaves the window.
			var at time.Time
			err := tx.QueryRow(ctx, `SELECT created_at FROM users WHERE client_id = $1 AND created_at > $2
				ORDER BY created_at DESC LIMIT 1 OFFSET $3`, u.ClientID, u.CreatedAt.Add(-q.Window), q.Rate-1).Scan(&at)
			switch {
			case err == nil:
				refusal = &tokend.EndUserRefusal{RetryAt: at.UTC().Add(q.Window)}
				return errQuota
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
		}
		return insertUser(ctx, tx, u)
	})
	if errors.Is(err, errQuota) {
		return refusal, nil
	}
	return nil, wrap("create end user", err)
}
