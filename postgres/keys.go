package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend"
)

// AddKey reads the newest key of the algorithm and inserts k after it. Two
// concurrent rotations after the same key both read it, but both then insert
// the same (alg, seq): the unique index makes the second wait for the first
// and fail once it commits, which is the lost compare-and-swap.
func (s *Store) AddKey(ctx context.Context, k *tokend.SigningKey, afterKid string) error {
	const op = "add key"
	lost := &tokend.Error{Code: tokend.ECONFLICT, Message: "another process rotated the key first"}
	return s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		var latest string
		var seq int64
		err := tx.QueryRow(ctx, `SELECT kid, seq FROM signing_keys WHERE alg = $1 ORDER BY seq DESC LIMIT 1`, k.Alg).Scan(&latest, &seq)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if latest != afterKid {
			return lost
		}
		_, err = tx.Exec(ctx, `INSERT INTO signing_keys (kid, alg, private_key, created_at, activates_at, revoked_at, seq)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.ID, k.Alg, k.PrivateKey, k.CreatedAt, k.ActivatesAt, optTime(k.RevokedAt), seq+1)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == uniqueViolation && pe.ConstraintName == "signing_keys_alg_seq" {
			lost.Err = err
			return lost
		}
		if err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, tokend.Change{Kind: tokend.ChangeKey, Ref: k.ID})
	})
}

func scanKey(row scanner) (*tokend.SigningKey, error) {
	var k tokend.SigningKey
	var revoked pgtype.Timestamptz
	if err := row.Scan(&k.ID, &k.Alg, &k.PrivateKey, &k.CreatedAt, &k.ActivatesAt, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt, k.ActivatesAt, k.RevokedAt = k.CreatedAt.UTC(), k.ActivatesAt.UTC(), fromOpt(revoked)
	return &k, nil
}

func (s *Store) ListKeys(ctx context.Context) ([]*tokend.SigningKey, error) {
	return all(ctx, s, "list keys", scanKey,
		`SELECT kid, alg, private_key, created_at, activates_at, revoked_at FROM signing_keys ORDER BY alg, seq`)
}

func (s *Store) RevokeKey(ctx context.Context, kid string, at time.Time) error {
	if unstorable(kid) {
		return notFound("revoke key")
	}
	return s.execChanged(ctx, "revoke key", tokend.ChangeKey, kid,
		`UPDATE signing_keys SET revoked_at = $1 WHERE kid = $2 AND revoked_at IS NULL`, optTime(at), kid)
}
