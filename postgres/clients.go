package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend"
)

const clientColumns = `id, name, secret_hash, prev_secret_hash, prev_secret_until, public, grants, scopes, mode, access_ttl_ms, disabled, created_at, version`

func scanClient(row scanner) (*tokend.ClientApp, error) {
	var c tokend.ClientApp
	var prevUntil pgtype.Timestamptz
	var ttl int64
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.PrevSecretHash, &prevUntil, &c.Public,
		&c.Grants, &c.Scopes, &c.Mode, &ttl, &c.Disabled, &c.CreatedAt, &c.Version); err != nil {
		return nil, err
	}
	c.PrevSecretUntil, c.CreatedAt = fromOpt(prevUntil), c.CreatedAt.UTC()
	c.Grants, c.Scopes = fromList(c.Grants), fromList(c.Scopes)
	c.AccessTTL = time.Duration(ttl) * time.Millisecond
	return &c, nil
}

func (s *Store) CreateClient(ctx context.Context, c *tokend.ClientApp) error {
	return s.inTx(ctx, "create client", func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)`,
			c.ID, c.Name, c.SecretHash, c.PrevSecretHash, optTime(c.PrevSecretUntil), c.Public,
			list(c.Grants), list(c.Scopes), c.Mode, c.AccessTTL.Milliseconds(), c.Disabled, c.CreatedAt)
		if err != nil {
			return err
		}
		c.Version = 1
		return s.recordChanges(ctx, tx, tokend.Change{Kind: tokend.ChangeClient, Ref: c.ID})
	})
}

func (s *Store) ClientByID(ctx context.Context, id string) (*tokend.ClientApp, error) {
	if unstorable(id) {
		return nil, notFound("client by id")
	}
	return one(ctx, s, "client by id", scanClient, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id)
}

func (s *Store) ListClients(ctx context.Context) ([]*tokend.ClientApp, error) {
	return all(ctx, s, "list clients", scanClient, `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`)
}

func (s *Store) SetClientSecret(ctx context.Context, id string, hash []byte, prevUntil time.Time) error {
	if unstorable(id) {
		return notFound("set client secret")
	}
	// SET sees the row as it was: prev_secret_hash gets the old secret_hash.
	return s.execChanged(ctx, "set client secret", tokend.ChangeClient, id,
		`UPDATE clients SET prev_secret_hash = CASE WHEN $1::boolean THEN secret_hash END,
			prev_secret_until = $2, secret_hash = $3, version = version + 1 WHERE id = $4`,
		!prevUntil.IsZero(), optTime(prevUntil), hash, id)
}

func (s *Store) DisableClient(ctx context.Context, id string) error {
	if unstorable(id) {
		return notFound("disable client")
	}
	return s.execChanged(ctx, "disable client", tokend.ChangeClient, id,
		`UPDATE clients SET disabled = true, version = version + 1 WHERE id = $1`, id)
}
