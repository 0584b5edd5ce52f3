package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/tokend/tokend"
)

const clientColumns = `id, name, secret_hash, prev_secret_hash, prev_secret_until, public, grants, scopes, mode, access_ttl_ms, disabled, created_at, version`

func scanClient(row interface{ Scan(...any) error }) (*tokend.ClientApp, error) {
	var c tokend.ClientApp
	var prevUntil, ttl, created int64
	var public, disabled int
	var grants, scopes string
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.PrevSecretHash, &prevUntil, &public, &grants, &scopes, &c.Mode, &ttl, &disabled, &created, &c.Version); err != nil {
		return nil, err
	}
	c.PrevSecretUntil, c.CreatedAt = fromMicro(prevUntil), fromMicro(created)
	c.Public, c.Disabled = public != 0, disabled != 0
	c.Grants, c.Scopes = splitList(grants), splitList(scopes)
	c.AccessTTL = time.Duration(ttl) * time.Millisecond
	return &c, nil
}

func (s *Store) CreateClient(ctx context.Context, c *tokend.ClientApp) error {
	return s.inTx(ctx, "create client", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
			c.ID, c.Name, c.SecretHash, c.PrevSecretHash, micro(c.PrevSecretUntil), b2i(c.Public),
			joinList(c.Grants), joinList(c.Scopes), c.Mode, c.AccessTTL.Milliseconds(), b2i(c.Disabled), micro(c.CreatedAt))
		if err != nil {
			return wrap("create client", err)
		}
		c.Version = 1
		return recordChange(ctx, tx, tokend.ChangeClient, c.ID)
	})
}

func (s *Store) ClientByID(ctx context.Context, id string) (*tokend.ClientApp, error) {
	c, err := scanClient(s.row(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	return c, wrap("client by id", err)
}

func (s *Store) ListClients(ctx context.Context) ([]*tokend.ClientApp, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`)
	if err != nil {
		return nil, wrap("list clients", err)
	}
	defer rows.Close()
	var out []*tokend.ClientApp
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, wrap("list clients", err)
		}
		out = append(out, c)
	}
	return out, wrap("list clients", rows.Err())
}

func (s *Store) SetClientSecret(ctx context.Context, id string, hash []byte, prevUntil time.Time) error {
	return s.execChanged(ctx, "set client secret", tokend.ChangeClient, id,
		`UPDATE clients SET prev_secret_hash = CASE WHEN ? THEN secret_hash ELSE NULL END,
			prev_secret_until = ?, secret_hash = ?, version = version + 1 WHERE id = ?`,
		b2i(!prevUntil.IsZero()), micro(prevUntil), hash, id)
}

func (s *Store) DisableClient(ctx context.Context, id string) error {
	return s.execChanged(ctx, "disable client", tokend.ChangeClient, id,
		`UPDATE clients SET disabled = 1, version = version + 1 WHERE id = ?`, id)
}
