package grant

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

// EndUser returns the end user id of client app client, creating a new
// one when id is empty (the taiki dialect's users, created on demand). An
// id that is unknown, disabled or owned by another client is an
// EINVALIDCLIENT error, like a wrong secret: the caller learns nothing
// about other clients' users.
func (e *Engine) EndUser(ctx context.Context, client *tokend.ClientApp, id string) (*tokend.User, error) {
	if id == "" {
		uid := uuid.Must(uuid.NewV7()).String()
		u := &tokend.User{ID: uid, Username: uid, ClientID: client.ID, CreatedAt: e.now()}
		if err := e.store.CreateUser(ctx, u); err != nil {
			return nil, fmt.Errorf("create end user: %w", err)
		}
		return u, nil
	}
	u, err := e.store.UserByID(ctx, id)
	if err != nil {
		if tokend.ErrorCode(err) == tokend.ENOTFOUND {
			return nil, errBadClient
		}
		return nil, fmt.Errorf("end user: %w", err)
	}
	if u.ClientID != client.ID || u.Disabled {
		return nil, errBadClient
	}
	return u, nil
}
