package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/tokend/tokend"
)

// End users of client apps, bounded (tokend.EndUserQuota). Every write
// goes through one connection in an immediate transaction, so the count,
// the rate check and the insert below are one atomic step.

// bumpEndUsers counts one more end user of clientID, if the app has fewer
// than max (0: no cap); it reports whether it did.
func bumpEndUsers(ctx context.Context, tx *sql.Tx, clientID string, max int) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO end_user_counts (client_id, users) VALUES (?, 1)
		ON CONFLICT (client_id) DO UPDATE SET users = users + 1 WHERE ? = 0 OR users < ?`, clientID, max, max)
	if err != nil {
		return false, wrap("count end users", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("count end users", err)
}

// errQuota rolls back a creation that the quota refuses.
var errQuota = errors.New("end user quota")

func (s *Store) CreateEndUser(ctx context.Context, u *tokend.User, q tokend.EndUserQuota) (*tokend.EndUserRefusal, error) {
	if u.ClientID == "" {
		return nil, tokend.Errorf(tokend.EINVALID, "an end user needs a client app")
	}
	var refusal *tokend.EndUserRefusal
	err := s.inTx(ctx, "create end user", func(tx *sql.Tx) error {
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
			var at int64
			err := tx.QueryRowContext(ctx, `SELECT created_at FROM users WHERE client_id = ? AND created_at > ?
				ORDER BY created_at DESC LIMIT 1 OFFSET ?`, u.ClientID, micro(u.CreatedAt.Add(-q.Window)), q.Rate-1).Scan(&at)
			switch {
			case err == nil:
				refusal = &tokend.EndUserRefusal{RetryAt: fromMicro(at).Add(q.Window)}
				return errQuota
			case !errors.Is(err, sql.ErrNoRows):
				return wrap("create end user: rate", err)
			}
		}
		return wrap("create end user", insertUser(ctx, tx, u))
	})
	if errors.Is(err, errQuota) {
		return refusal, nil
	}
	return nil, err
}
