package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tokend/tokend"
)

func (s *Store) AddKey(ctx context.Context, k *tokend.SigningKey, afterKid string) error {
	const op = "add key"
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		var latest string
		var seq int64
		err := tx.QueryRowContext(ctx, `SELECT kid, seq FROM signing_keys WHERE alg = ? ORDER BY seq DESC LIMIT 1`, k.Alg).Scan(&latest, &seq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return wrap(op, err)
		}
		if latest != afterKid {
			return &tokend.Error{Code: tokend.ECONFLICT, Message: "another process rotated the key first"}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO signing_keys (kid, alg, private_key, created_at, activates_at, revoked_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.Alg, k.PrivateKey, micro(k.CreatedAt), micro(k.ActivatesAt), micro(k.RevokedAt), seq+1)
		if err != nil {
			return wrap(op, err)
		}
		return recordChange(ctx, tx, tokend.ChangeKey, k.ID)
	})
}

func (s *Store) ListKeys(ctx context.Context) ([]*tokend.SigningKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kid, alg, private_key, created_at, activates_at, revoked_at FROM signing_keys ORDER BY alg, seq`)
	if err != nil {
		return nil, wrap("list keys", err)
	}
	defer rows.Close()
	var out []*tokend.SigningKey
	for rows.Next() {
		var k tokend.SigningKey
		var created, activates, revoked int64
		if err := rows.Scan(&k.ID, &k.Alg, &k.PrivateKey, &created, &activates, &revoked); err != nil {
			return nil, wrap("list keys", err)
		}
		k.CreatedAt, k.ActivatesAt, k.RevokedAt = fromMicro(created), fromMicro(activates), fromMicro(revoked)
		out = append(out, &k)
	}
	return out, wrap("list keys", rows.Err())
}

func (s *Store) RevokeKey(ctx context.Context, kid string, at time.Time) error {
	return s.execChanged(ctx, "revoke key", tokend.ChangeKey, kid,
		`UPDATE signing_keys SET revoked_at = ? WHERE kid = ? AND revoked_at = 0`, micro(at), kid)
}
