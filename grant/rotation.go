package grant

import (
	"context"
	"fmt"

	"github.com/tokend/tokend"
)

// RotateDueKeys starts a new key for every algorithm in use whose newest
// key is older than the rotation period. The new key is published at once
// and signs after the pre-publication delay, so verifiers' caches have it
// before any token it signs reaches them. The store's compare-and-swap
// makes exactly one process rotate when several are due at once; the
// others see ECONFLICT and leave it. It returns the kids it added.
func (e *Engine) RotateDueKeys(ctx context.Context) ([]string, error) {
	if e.cfg.KeyRotationPeriod <= 0 {
		return nil, nil
	}
	stored, err := e.store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("rotate keys: %w", err)
	}
	newest := map[string]*tokend.SigningKey{}
	for _, k := range stored {
		if k.RevokedAt.IsZero() {
			newest[k.Alg] = k
		}
	}
	now := e.now()
	var added []string
	for _, alg := range e.algs() {
		if k := newest[alg]; k != nil && now.Sub(k.CreatedAt) < e.cfg.KeyRotationPeriod {
			continue
		}
		kid, err := AddKey(ctx, e.store, e.vault, alg, now, now.Add(e.cfg.KeyPrepublish), NewestKid(stored, alg))
		switch {
		case err == nil:
			added = append(added, kid)
			e.log.Info("signing key rotated", "alg", alg, "kid", kid, "prepublish", e.cfg.KeyPrepublish.String())
			e.audit(ctx, "key.rotated", "", "", "success", "alg="+alg+" kid="+kid)
		case tokend.ErrorCode(err) == tokend.ECONFLICT:
			// another node rotated first
		default:
			return added, fmt.Errorf("rotate keys: %w", err)
		}
	}
	if len(added) > 0 {
		return added, e.reloadKeys(ctx)
	}
	return nil, nil
}

// algs lists the algorithms the engine signs with.
func (e *Engine) algs() []string {
	out := []string{e.cfg.Alg}
	for _, a := range e.cfg.ExtraAlgs {
		if a != e.cfg.Alg {
			out = append(out, a)
		}
	}
	return out
}
