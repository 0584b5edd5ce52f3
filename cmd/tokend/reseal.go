package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/keys"
)

// keyReseal is `tokend key reseal`: it moves the secrets a master key
// seals (every signing key's private part, the refresh-token key) from the
// old master key to the new one in one transaction. The old key comes from
// TOKEND_OLD_MASTER_KEY or --old-master-key-file (none: the secrets are in
// the clear), the new one from TOKEND_MASTER_KEY or --master-key-file, as
// for serve. Going back to no master key at all takes --remove-master-key,
// so that a forgotten variable never decrypts a store.
func (c *cli) keyReseal() command {
	var (
		oldFile, newFile string
		remove           bool
		from, to         *keys.Vault
	)
	return command{
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&oldFile, "old-master-key-file", "", "file holding the master key the store is sealed with now (or set TOKEND_OLD_MASTER_KEY; none: the secrets are in the clear)")
			fs.StringVar(&newFile, "master-key-file", "", "file holding the new master key (or set TOKEND_MASTER_KEY)")
			fs.BoolVar(&remove, "remove-master-key", false, "store the secrets in the clear: no new master key")
		},
		check: func(a []string) error {
			var err error
			// The old key may be a passphrase older versions took: this
			// is how a store sealed under one moves to a strong key.
			if from, err = keys.LoadOldVault(os.Getenv("TOKEND_OLD_MASTER_KEY"), oldFile); err != nil {
				return usagef("old master key: %v", err)
			}
			if to, err = keys.LoadVault(os.Getenv("TOKEND_MASTER_KEY"), newFile); err != nil {
				return usagef("new master key: %v", err)
			}
			switch {
			case to == nil && !remove:
				return usagef("no new master key: set TOKEND_MASTER_KEY or --master-key-file (or pass --remove-master-key to store the secrets in the clear)")
			case to != nil && remove:
				return usagef("--remove-master-key goes without a new master key")
			case from == nil && remove:
				return usagef("--remove-master-key needs the old master key (TOKEND_OLD_MASTER_KEY or --old-master-key-file)")
			case from != nil && from.SameKey(to):
				return usagef("the old and the new master key are the same")
			}
			return nil
		},
		run: func(ctx context.Context, s tokend.Store, a []string) error {
			n, err := grant.Reseal(ctx, s, from, to)
			switch {
			case errors.Is(err, keys.ErrNoMasterKey):
				return tokend.Errorf(tokend.EINVALID, "the store holds secrets sealed under a master key: give it as the old key (TOKEND_OLD_MASTER_KEY or --old-master-key-file); nothing was changed")
			case errors.Is(err, keys.ErrWrongMasterKey):
				return tokend.Errorf(tokend.EINVALID, "the store holds secrets that open with neither the old nor the new master key; nothing was changed")
			case err != nil:
				return err
			}
			state, dest, restart := "sealed under the new master key", "master_key", "with the new master key"
			if to == nil {
				state, dest, restart = "in the clear", "clear", "without a master key"
			}
			if err := audit(ctx, s, "key.resealed", "", "", fmt.Sprintf("count=%d to=%s", n, dest)); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "resealed %d secrets: the store's secrets are now %s.\nRestart every server %s.\n", n, state, restart)
			return nil
		},
	}
}
