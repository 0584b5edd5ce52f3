package grant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

// The refusals of EndUser when a client app's end-user quota is spent. They
// come wrapped in an ETOOMANY *tokend.Error whose RetryAfter says when to
// try again; errors.Is tells them apart, for a dialect to word its answer.
var (
	// ErrEndUserCap: the app has as many end users as it may ever have.
	// Users are never deleted, so only an operator can lift it; clients
	// are told to come back in EndUserCapRetry.
	ErrEndUserCap = errors.New("client app has reached its cap on end users")
	// ErrEndUserRate: the app created its allowance of end users within
	// the window; more fit when the oldest of them leave it.
	ErrEndUserRate = errors.New("client app is creating end users too fast")
)

// EndUserCapRetry is the Retry-After of ErrEndUserCap: long, as waiting
// does not lift the cap.
const EndUserCapRetry = time.Hour

// EndUser returns the end user id of client app client, creating a new
// one when id is empty (the taiki dialect's users, created on demand)
// within quota q: ETOOMANY wrapping ErrEndUserCap or ErrEndUserRate when
// the app may not create one now. The store counts and inserts in one
// atomic step, so the quota holds under concurrency and across nodes. An
// id that is unknown, disabled or owned by another client is an
// EINVALIDCLIENT error, like a wrong secret: the caller learns nothing
// about other clients' users.
func (e *Engine) EndUser(ctx context.Context, client *tokend.ClientApp, id string, q tokend.EndUserQuota) (*tokend.User, error) {
	if id == "" {
		now := e.now()
		uid := uuid.Must(uuid.NewV7()).String()
		u := &tokend.User{ID: uid, Username: uid, ClientID: client.ID, CreatedAt: now}
		refusal, err := e.store.CreateEndUser(ctx, u, q)
		if err != nil {
			return nil, fmt.Errorf("create end user: %w", err)
		}
		if refusal != nil {
			return nil, e.refuseEndUser(client, refusal, now)
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

// refuseEndUser turns the store's refusal into the engine's error.
func (e *Engine) refuseEndUser(client *tokend.ClientApp, r *tokend.EndUserRefusal, now time.Time) error {
	if r.Full {
		e.log.Debug("client app at its cap on end users", "client_id", client.ID)
		return &tokend.Error{Code: tokend.ETOOMANY, Message: "end user cap reached", RetryAfter: EndUserCapRetry, Err: ErrEndUserCap}
	}
	e.log.Debug("client app over its end-user creation rate", "client_id", client.ID)
	return &tokend.Error{Code: tokend.ETOOMANY, Message: "end users created too fast", RetryAfter: r.RetryAt.Sub(now), Err: ErrEndUserRate}
}
