package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tokend/tokend"
)

// Reseal runs in one immediate transaction, which holds SQLite's write
// lock from its first statement: a second process's Reseal waits for the
// first to commit, then reads what it stored. Each rewrite is also a
// compare-and-swap on the value read.
func (s *Store) Reseal(ctx context.Context, fn func(kind, name string, value []byte) ([]byte, bool, error)) (int, error) {
	const op = "reseal"
	var n int
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		n = 0
		for _, t := range []struct{ kind, read, write string }{
			{tokend.ResealKey, `SELECT kid, private_key FROM signing_keys ORDER BY kid`,
				`UPDATE signing_keys SET private_key = ? WHERE kid = ? AND private_key = ?`},
			{tokend.ResealSecret, `SELECT name, value FROM settings ORDER BY name`,
				`UPDATE settings SET value = ? WHERE name = ? AND value = ?`},
		} {
			vals, err := readNamed(ctx, tx, t.read)
			if err != nil {
				return wrap(op, err)
			}
			for _, v := range vals {
				out, changed, err := fn(t.kind, v.name, v.value)
				if err != nil {
					return fmt.Errorf("%s %s %s: %w", op, t.kind, v.name, err)
				}
				if !changed {
					continue
				}
				res, err := tx.ExecContext(ctx, t.write, out, v.name, v.value)
				if err != nil {
					return wrap(op, err)
				}
				if k, _ := res.RowsAffected(); k != 1 {
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

type named struct {
	name  string
	value []byte
}

// readNamed reads every (name, value) row a query returns.
func readNamed(ctx context.Context, tx *sql.Tx, query string) ([]named, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []named
	for rows.Next() {
		var v named
		if err := rows.Scan(&v.name, &v.value); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
