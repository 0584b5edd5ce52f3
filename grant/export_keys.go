package grant

import (
	"context"
	"crypto"
	"fmt"
	"slices"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
)

// PublicKeyInfo is a signing key's public part and what it is.
type PublicKeyInfo struct {
	KeyInfo
	Public crypto.PublicKey
}

// PublicKeys returns the public keys that verifiers should hold: with
// kid, that key (ENOTFOUND if there is none; EINVALID if it is revoked, or
// not of alg when alg is given); otherwise the keys that sign now or are
// announced to sign next, of alg if given. ENOTFOUND when none is. The
// private parts are opened with the manager's vault to derive the public
// ones, and never leave this function.
func (m *Manager) PublicKeys(ctx context.Context, alg, kid string) ([]PublicKeyInfo, error) {
	if alg != "" && !keys.ValidAlg(alg) {
		return nil, tokend.Invalid([]tokend.FieldError{fieldErr("alg", "unknown algorithm %q: want ES256, EdDSA, RS256 or RS512", safeText(alg))})
	}
	stored, err := m.Store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	infos := keyInfos(stored, m.now())
	var out []PublicKeyInfo
	for i, k := range infos {
		switch {
		case kid != "" && k.Kid != kid:
			continue
		case kid != "" && k.Status == KeyRevoked:
			return nil, tokend.Errorf(tokend.EINVALID, "key %s is revoked: it verifies nothing", k.Kid)
		case kid != "" && alg != "" && k.Alg != alg:
			return nil, tokend.Errorf(tokend.EINVALID, "key %s is an %s key, not %s", k.Kid, k.Alg, alg)
		case kid == "" && (alg != "" && k.Alg != alg || !slices.Contains([]string{KeySigning, KeyAnnounced}, k.Status)):
			continue
		}
		pub, err := keys.PublicKey(stored[i], m.Vault)
		if err != nil {
			return nil, err
		}
		out = append(out, PublicKeyInfo{KeyInfo: k, Public: pub})
	}
	switch {
	case len(out) > 0:
		return out, nil
	case kid != "":
		return nil, tokend.Errorf(tokend.ENOTFOUND, "no key %q", safeText(kid))
	case alg != "":
		return nil, tokend.Errorf(tokend.ENOTFOUND, "no %s key signs or is announced: rotate one in with 'tokend key rotate --alg %s'", alg, alg)
	}
	return nil, tokend.Errorf(tokend.ENOTFOUND, "no key signs or is announced")
}
