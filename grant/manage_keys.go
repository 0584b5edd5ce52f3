package grant

import (
	"context"
	"fmt"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
)

// Key statuses.
const (
	KeyAnnounced = "announced" // published, signs from ActivatesAt
	KeySigning   = "signing"   // the key its algorithm signs with now
	KeyRetired   = "retired"   // a newer key signs; published while its tokens may live
	KeyRevoked   = "revoked"   // neither signs nor verifies
)

// KeyInfo describes a signing key without its private part.
type KeyInfo struct {
	Kid, Alg, Status string
	CreatedAt        time.Time
	ActivatesAt      time.Time
	RevokedAt        time.Time // zero unless revoked
}

// keyInfos describes stored keys (as ListKeys orders them) at now.
func keyInfos(stored []*tokend.SigningKey, now time.Time) []KeyInfo {
	out := make([]KeyInfo, 0, len(stored))
	for i, k := range stored {
		status := KeySigning
		switch {
		case !k.RevokedAt.IsZero():
			status = KeyRevoked
		case k.ActivatesAt.After(now):
			status = KeyAnnounced
		default:
			for _, later := range stored[i+1:] {
				if later.Alg == k.Alg && later.RevokedAt.IsZero() && !later.ActivatesAt.After(now) {
					status = KeyRetired
					break
				}
			}
		}
		out = append(out, KeyInfo{Kid: k.ID, Alg: k.Alg, Status: status, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RevokedAt: k.RevokedAt})
	}
	return out
}

// Keys lists the signing keys, grouped by algorithm, oldest first.
func (m *Manager) Keys(ctx context.Context) ([]KeyInfo, error) {
	stored, err := m.Store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return keyInfos(stored, m.now()), nil
}

// RotateKey adds a new key for alg that signs after prepublish (0: at
// once), sealed with the manager's vault. Should another process rotate
// the same line at that moment, the new key goes after its key. EINVALID
// for an unknown algorithm or a prepublish out of range.
func (m *Manager) RotateKey(ctx context.Context, alg string, prepublish time.Duration) (KeyInfo, error) {
	var errs []tokend.FieldError
	if !keys.ValidAlg(alg) {
		errs = append(errs, fieldErr("alg", "unknown algorithm %q: want ES256, EdDSA, RS256 or RS512", safeText(alg)))
	}
	if prepublish < 0 || prepublish > MaxPrepublish {
		errs = append(errs, fieldErr("prepublish", "must be between 0 and %d seconds (%s)", int(MaxPrepublish.Seconds()), MaxPrepublish))
	}
	if err := tokend.Invalid(errs); err != nil {
		return KeyInfo{}, err
	}
	for attempt := 0; ; attempt++ {
		stored, err := m.Store.ListKeys(ctx)
		if err != nil {
			return KeyInfo{}, fmt.Errorf("rotate key: %w", err)
		}
		now := m.now()
		kid, err := AddKey(ctx, m.Store, m.Vault, alg, now, now.Add(prepublish), NewestKid(stored, alg))
		if tokend.ErrorCode(err) == tokend.ECONFLICT && attempt < 3 {
			continue
		}
		if err != nil {
			return KeyInfo{}, fmt.Errorf("rotate key: %w", err)
		}
		if err := m.done(ctx, "key.rotated", "", "", "alg="+alg+" kid="+kid); err != nil {
			return KeyInfo{}, err
		}
		all, err := m.Keys(ctx)
		if err != nil {
			return KeyInfo{}, err
		}
		for _, k := range all {
			if k.Kid == kid {
				return k, nil
			}
		}
		return KeyInfo{}, fmt.Errorf("rotate key: key %s not found after adding it", kid)
	}
}
