package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tokend/tokend"
)

// importRetries bounds how often a batch starts again after it lost a race.
const importRetries = 4

// importLockWait is how long a batch waits for another import's batch to
// commit (longer than the usual lock_timeout: a batch takes a while).
const importLockWait = "8s"

// ImportUsers writes a batch in one transaction. Batches of imports take
// turns (an advisory lock); each reads every stored user it may match in
// one query (locking them when it may update them), decides each user on that state as the batch
// changes it, then writes. A user created meanwhile by another kind of
// transaction (the admin API's) shows as a unique violation: the batch
// then rolls back and starts again, and sees that user the second time.
func (s *Store) ImportUsers(ctx context.Context, batch []tokend.ImportUser) ([]tokend.ImportOutcome, error) {
	for attempt := 0; ; attempt++ {
		out, err := s.importBatch(ctx, batch)
		if err == nil || attempt == importRetries || !lostRace(err) {
			return out, err
		}
	}
}

// lostRace reports whether err is a transaction that another one got in
// the way of.
func lostRace(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == uniqueViolation || pe.Code == "40P01" || pe.Code == "40001")
}

func (s *Store) importBatch(ctx context.Context, batch []tokend.ImportUser) ([]tokend.ImportOutcome, error) {
	const op = "import users"
	out := make([]tokend.ImportOutcome, len(batch))
	err := s.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		// Imports take turns: two batches that create the same users in
		// different orders would otherwise wait on each other. The
		// lookups are planned for the table as it is now: a plan cached
		// while an import fills an empty table would scan it whole.
		b := &pgx.Batch{}
		b.Queue(`SELECT set_config('lock_timeout', $1, true)`, importLockWait)
		b.Queue(`SELECT set_config('plan_cache_mode', 'force_custom_plan', true)`)
		b.Queue(`SELECT pg_advisory_xact_lock($1)`, lockKey("tokend import "+s.schema))
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		// Every user whose id or username is an id or username of the
		// batch: ImportUser.Plan looks both ways.
		var ids, keys []string
		lock := "" // the users an update may overwrite are locked; others need not be
		for _, in := range batch {
			if in.ByID {
				ids = append(ids, in.User.ID)
				keys = append(keys, in.User.ID)
			}
			keys = append(keys, in.User.Username)
			if in.Update {
				lock = " FOR UPDATE"
			}
		}
		rows, err := tx.Query(ctx, `SELECT `+userColumns+` FROM users
			WHERE id = ANY($1) OR (client_id = '' AND username = ANY($1)) ORDER BY id`+lock, keys)
		if err != nil {
			return err
		}
		stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tokend.User, error) { return scanUser(r) })
		if err != nil {
			return err
		}
		byID, byName := map[string]*tokend.User{}, map[string]*tokend.User{}
		for _, u := range stored {
			byID[u.ID] = u
			if u.ClientID == "" {
				byName[u.Username] = u
			}
		}
		rows, err = tx.Query(ctx, `SELECT id FROM clients WHERE id = ANY($1)`, ids)
		if err != nil {
			return err
		}
		clientIDs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		isClient := map[string]bool{}
		for _, id := range clientIDs {
			isClient[id] = true
		}
		var changes []tokend.Change
		for i := range batch {
			in := &batch[i]
			state := tokend.ImportState{ByName: byName[in.User.Username], NameAsID: byID[in.User.Username]}
			if in.ByID {
				state.ByID, state.IDIsClient, state.IDAsName = byID[in.User.ID], isClient[in.User.ID], byName[in.User.ID]
			}
			plan := in.Plan(state)
			out[i] = plan.Outcome
			u := plan.Write
			switch plan.Outcome.Result {
			case tokend.ImportCreated:
				if err := insertUser(ctx, tx, u); err != nil {
					return err
				}
			case tokend.ImportUpdated:
				revoked, err := s.updateImported(ctx, tx, in, &plan)
				if err != nil {
					return err
				}
				changes = append(changes, revoked...)
				if old := byID[u.ID]; old != nil {
					delete(byName, old.Username)
				}
			default:
				continue
			}
			byID[u.ID], byName[u.Username] = u, u
			changes = append(changes, tokend.Change{Kind: tokend.ChangeUser, Ref: u.ID})
		}
		if len(changes) == 0 {
			return nil
		}
		return s.recordChanges(ctx, tx, changes...)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// updateImported writes the new state of a matched user and ends its
// sessions when its password changed or it is disabled; it returns the
// changes of the sessions it revoked.
func (s *Store) updateImported(ctx context.Context, tx pgx.Tx, in *tokend.ImportUser, plan *tokend.ImportPlan) ([]tokend.Change, error) {
	u := plan.Write
	claims, err := tokend.EncodeClaims(u.Claims)
	if err != nil {
		return nil, fmt.Errorf("import user: %w", err)
	}
	_, err = tx.Exec(ctx, `UPDATE users SET username = $1, password_hash = $2, roles = $3, claims = $4, disabled = $5,
		created_at = $6, last_login_at = $7, tokens_not_before = $8, version = version + 1 WHERE id = $9`,
		u.Username, u.PasswordHash, list(u.Roles), claims, u.Disabled,
		u.CreatedAt, optTime(u.LastLoginAt), optTime(u.TokensNotBefore), u.ID)
	if err != nil {
		return nil, err
	}
	switch {
	case plan.PasswordChanged:
		return revokeUserSessions(ctx, tx, u.ID, in.At, "password changed")
	case u.Disabled:
		return revokeUserSessions(ctx, tx, u.ID, in.At, "user disabled")
	}
	return nil, nil
}
