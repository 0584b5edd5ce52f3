package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
)

// Reseal locks every row it may rewrite (SELECT ... FOR UPDATE, in one
// order, so that two calls cannot deadlock): a second node's Reseal waits
// on the first row until the first commits, and then reads the rows as
// the first left them. Each rewrite is also a compare-and-swap on the
// value read.
func (s *Store) Reseal(ctx context.Context, fn func(kind, name string, value []byte) ([]byte, bool, error)) (int, error) {
	const op = "reseal"
	var n int
	err := s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		n = 0
		for _, t := range []struct{ kind, read, write string }{
			{tokend.ResealKey, `SELECT kid, private_key FROM signing_keys ORDER BY kid FOR UPDATE`,
				`UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3`},
			{tokend.ResealSecret, `SELECT name, value FROM settings ORDER BY name FOR UPDATE`,
				`UPDATE settings SET value = $1 WHERE name = $2 AND value = $3`},
		} {
			rows, err := tx.Query(ctx, t.read)
			if err != nil {
				return err
			}
			type named struct {
				name  string
				value []byte
			}
			vals, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (named, error) {
				var v named
				err := r.Scan(&v.name, &v.value)
				return v, err
			})
			if err != nil {
				return err
			}
			for _, v := range vals {
				out, changed, err := fn(t.kind, v.name, v.value)
				if err != nil {
					return fmt.Errorf("%s %s: %w", t.kind, v.name, err)
				}
				if !changed {
					continue
				}
				tag, err := tx.Exec(ctx, t.write, out, v.name, v.value)
				if err != nil {
					return err
				}
				if tag.RowsAffected() != 1 {
					return &tokend.Error{Code: tokend.ECONFLICT, Message: "the value changed while it was resealed", Err: fmt.Errorf("%s %s %s", op, t.kind, v.name)}
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
