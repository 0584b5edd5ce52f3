package grant

import (
	"context"
	"fmt"
	"slices"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
)

// sealedSecrets are the install secrets that a master key seals: the
// refresh-token key can forge refresh tokens. (The client-secret pepper
// only keys hashes of 256-bit secrets; it stays in the clear.)
var sealedSecrets = []string{"refresh_token_key"}

// Reseal moves every value a master key seals (each signing key's private
// part and the refresh-token key) from vault `from` to vault `to`, in one
// store transaction, and returns how many values it rewrote. Either vault
// may be nil (no master key): nil to a key seals what is in the clear, a
// key to nil opens everything back into the clear.
//
// A value already sealed under `to` is left alone, so Reseal can run again
// after it was interrupted, or on every start (from and to the same vault:
// then it only seals what is still in the clear), and several nodes running
// it at once seal each value exactly once. A sealed value that opens with
// neither vault fails with keys.ErrWrongMasterKey (or keys.ErrNoMasterKey
// when `from` is nil), and nothing is rewritten.
func Reseal(ctx context.Context, store tokend.Store, from, to *keys.Vault) (int, error) {
	n, err := store.Reseal(ctx, func(kind, name string, value []byte) ([]byte, bool, error) {
		if kind == tokend.ResealSecret && !slices.Contains(sealedSecrets, name) {
			return nil, false, nil
		}
		if !keys.IsSealed(value) {
			if to == nil {
				return nil, false, nil
			}
			out, err := to.Seal(name, value)
			return out, err == nil, err
		}
		if to != nil {
			if _, err := to.Open(name, value); err == nil {
				return nil, false, nil
			}
		}
		plain, err := from.Open(name, value)
		if err != nil {
			return nil, false, err
		}
		out, err := to.Seal(name, plain)
		return out, err == nil, err
	})
	if err != nil {
		return 0, fmt.Errorf("reseal secrets: %w", err)
	}
	return n, nil
}

// sealAtRest seals, on start with a master key, whatever the store still
// holds in the clear: a store created without a master key, or written by
// a process that had none.
func (e *Engine) sealAtRest(ctx context.Context) error {
	if e.vault == nil {
		return nil
	}
	n, err := Reseal(ctx, e.store, e.vault, e.vault)
	if err != nil {
		return err
	}
	if n > 0 {
		e.log.Info("sealed secrets that were stored in the clear with the master key", "count", n)
	}
	return nil
}
