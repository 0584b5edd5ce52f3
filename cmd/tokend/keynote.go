package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tokend/tokend"
)

// unusedAlgNote warns, when the store held no live key of alg before a
// rotation, that no server signs with alg: a server makes sure it has a
// key for each algorithm it signs with when it starts, so a line with no
// live key is one no server has started with. The CLI cannot see the
// servers' flags, so it says what the store shows and what would change
// it.
func unusedAlgNote(stored []*tokend.SigningKey, alg string) string {
	var live []string
	for _, k := range stored {
		if k.RevokedAt.IsZero() && !slices.Contains(live, k.Alg) {
			live = append(live, k.Alg)
		}
	}
	if slices.Contains(live, alg) {
		return ""
	}
	setting := "--alg " + alg
	if alg == "ES256" {
		setting += " (the default)"
	}
	have := "none"
	if len(live) > 0 {
		slices.Sort(live)
		have = strings.Join(live, ", ")
	}
	return fmt.Sprintf("note: the store had no live %s key, so no tokend server signs with %s (algorithms with live keys: %s).\n"+
		"The new key is published in the JWKS, but nothing signs with it until a server starts with %s, "+
		"or with a dialect's algorithm set to %s (--atoti-alg, --simplejwt-alg, --ocm-alg, --taiki-alg).", alg, alg, have, setting, alg)
}
