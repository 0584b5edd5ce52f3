package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/keys"
)

// keyExportCommand is `tokend key export`: the public keys, for verifiers
// that are given a key rather than the JWKS URL (Atoti's configuration
// takes an RSA public key in PEM). By default the keys that sign now or
// are announced to sign next; --alg narrows them, --kid picks one. Only
// public parts are ever printed.
func (c *cli) keyExportCommand() command {
	var alg, kid, format string
	return command{
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&format, "format", "", "pem (PKIX PUBLIC KEY blocks), jwk (one key) or jwks (a key set, as /.well-known/jwks.json)")
			fs.StringVar(&alg, "alg", "", "only keys of this algorithm: ES256, EdDSA, RS256 or RS512")
			fs.StringVar(&kid, "kid", "", "only the key with this kid")
			fs.StringVar(&c.masterKeyFile, "master-key-file", "", "file holding the master key, if the keys are sealed (or set TOKEND_MASTER_KEY)")
		},
		check: func([]string) error {
			switch format {
			case "pem", "jwk", "jwks":
			case "":
				return usagef("key export needs --format pem, jwk or jwks")
			default:
				return usagef("--format %q: want pem, jwk or jwks", format)
			}
			if alg != "" && !keys.ValidAlg(alg) {
				return usagef("--alg %q: want ES256, EdDSA, RS256 or RS512", alg)
			}
			return nil
		},
		run: func(ctx context.Context, s tokend.Store, a []string) error {
			return c.keyExport(ctx, s, alg, kid, format)
		},
	}
}

func (c *cli) keyExport(ctx context.Context, s tokend.Store, alg, kid, format string) error {
	vault, err := keys.LoadVault(os.Getenv("TOKEND_MASTER_KEY"), c.masterKeyFile)
	if err != nil {
		return err
	}
	m := manager(s)
	m.Vault = vault
	pubs, err := m.PublicKeys(ctx, alg, kid)
	if err != nil {
		return err
	}
	switch format {
	case "pem":
		for _, k := range pubs {
			b, err := keys.PublicPEM(k.Public)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "kid %s (%s, %s)\n", k.Kid, k.Alg, k.Status)
			c.stdout.Write(b)
		}
		return nil
	case "jwk":
		if len(pubs) > 1 {
			var kids []string
			for _, k := range pubs {
				kids = append(kids, k.Kid+" ("+k.Alg+", "+k.Status+")")
			}
			return tokend.Errorf(tokend.EINVALID, "%d keys match and --format jwk prints one: choose with --kid or --alg: %s", len(pubs), strings.Join(kids, ", "))
		}
		return c.printJSON(keys.PublicJWK(pubs[0].Kid, pubs[0].Alg, pubs[0].Public))
	default:
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
		for _, k := range pubs {
			set.Keys = append(set.Keys, keys.PublicJWK(k.Kid, k.Alg, k.Public))
		}
		b, err := json.Marshal(set)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", b)
		return err
	}
}
