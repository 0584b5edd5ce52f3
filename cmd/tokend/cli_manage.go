package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/secret"
)

// The management commands are front ends of the engine's grant.Manager,
// which the admin API calls too: the same rules and the same audit events
// (actor "cli") whichever one changes the store.

// manager returns the engine's Manager on the CLI's store. Its changes
// reach running servers through the store's change feed.
func manager(s tokend.Store) *grant.Manager {
	return &grant.Manager{Store: s, Params: secret.DefaultParams, Dialect: "cli"}
}

// fieldUsage turns the engine's field errors into one usage message that
// names the flag at fault.
func fieldUsage(errs []tokend.FieldError) error {
	flags := map[string]string{
		"roles": "--role", "grants": "--grant", "scopes": "--scope", "mode": "--mode", "access_ttl": "--access-ttl",
		"claims": "--claim", "name": "the name", "username": "the name", "overlap": "--overlap", "prepublish": "--prepublish", "alg": "--alg",
	}
	var msgs []string
	for _, e := range errs {
		root := e.Field
		if i := strings.IndexAny(root, ".["); i >= 0 {
			root = root[:i]
		}
		what, ok := flags[root]
		if !ok {
			what = e.Field
		}
		if rest := strings.TrimPrefix(e.Field, root); strings.HasPrefix(rest, ".") {
			what += " " + rest[1:]
		}
		msgs = append(msgs, what+": "+e.Detail)
	}
	return usageError{strings.Join(msgs, "; ")}
}

func (c *cli) setUserDisabled(ctx context.Context, s tokend.Store, nameOrID string, disabled bool) error {
	m := manager(s)
	u, err := m.FindUser(ctx, nameOrID)
	if err != nil {
		return err
	}
	if _, err := m.SetUserDisabled(ctx, u.ID, disabled); err != nil {
		return err
	}
	if disabled {
		fmt.Fprintf(c.stdout, "disabled user %s; their sessions are revoked\n", u.Username)
	} else {
		fmt.Fprintf(c.stdout, "enabled user %s\n", u.Username)
	}
	return nil
}

func (c *cli) setClientDisabled(ctx context.Context, s tokend.Store, id string, disabled bool) error {
	if _, err := manager(s).SetClientDisabled(ctx, id, disabled); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s client %s\n", map[bool]string{true: "disabled", false: "enabled"}[disabled], id)
	return nil
}

// claimFlag collects --claim k=v (a string) and --claim-json k=JSON.
type claimFlag struct {
	set  map[string]any
	json bool
}

func (f *claimFlag) String() string { return "" }

func (f *claimFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE")
	}
	if f.set == nil {
		f.set = map[string]any{}
	}
	if !f.json {
		f.set[k] = val
		return nil
	}
	d, err := tokend.DecodeClaims([]byte(`{"v":` + val + `}`))
	if err != nil {
		return fmt.Errorf("%s: the value is not JSON", k)
	}
	f.set[k] = d["v"]
	return nil
}

func (c *cli) manageCommands() map[string]command {
	var (
		roles, unset         listFlag
		clearRoles, clearAll bool
		claims               = &claimFlag{}
		claimsJSON           = &claimFlag{json: true}
		user                 string
	)
	jsonFlag := func(fs *flag.FlagSet) { fs.BoolVar(&c.json, "json", false, "print JSON") }
	return map[string]command{
		"user enable": {
			positional: 1, names: "a user name",
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				return c.setUserDisabled(ctx, s, a[0], false)
			},
		},
		"user delete": {
			positional: 1, names: "a user name",
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				m := manager(s)
				u, err := m.FindUser(ctx, a[0])
				if err != nil {
					return err
				}
				if err := m.DeleteUser(ctx, u.ID, nil); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "deleted user %s; their sessions are ended\n", u.Username)
				return nil
			},
		},
		"user set": {
			positional: 1, names: "a user name",
			flags: func(fs *flag.FlagSet) {
				fs.Var(&roles, "role", "the user's roles: replaces them all (repeatable)")
				fs.BoolVar(&clearRoles, "clear-roles", false, "remove every role")
				fs.Var(claims, "claim", "set a custom claim to a string: NAME=VALUE (repeatable)")
				fs.Var(claimsJSON, "claim-json", "set a custom claim to a JSON value: NAME=JSON (repeatable)")
				fs.Var(&unset, "unset-claim", "remove a custom claim (repeatable)")
				fs.BoolVar(&clearAll, "clear-claims", false, "remove every custom claim first")
			},
			check: func(a []string) error {
				if len(roles) == 0 && !clearRoles && len(claims.set) == 0 && len(claimsJSON.set) == 0 && len(unset) == 0 && !clearAll {
					return usagef("user set needs --role, --clear-roles, --claim, --claim-json, --unset-claim or --clear-claims")
				}
				if clearRoles && len(roles) > 0 {
					return usagef("--clear-roles and --role do not go together")
				}
				if _, errs := grant.CheckRoles("roles", roles); len(errs) > 0 {
					return fieldUsage(errs)
				}
				return nil
			},
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				return c.userSet(ctx, s, a[0], roles, clearRoles, claims.set, claimsJSON.set, unset, clearAll)
			},
		},
		"client enable": {
			positional: 1, names: "a client id",
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				return c.setClientDisabled(ctx, s, a[0], false)
			},
		},
		"client delete": {
			positional: 1, names: "a client id",
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				if err := manager(s).DeleteClient(ctx, a[0], nil); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "deleted client %s with its end users and sessions\n", a[0])
				return nil
			},
		},
		"session list": {
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&user, "user", "", "only the sessions of this user (name or id)")
				jsonFlag(fs)
			},
			run: func(ctx context.Context, s tokend.Store, a []string) error { return c.sessionList(ctx, s, user) },
		},
		"session revoke": {
			positional: 1, names: "a session id",
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				if err := manager(s).RevokeSession(ctx, a[0]); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "revoked session %s\n", a[0])
				return nil
			},
		},
	}
}

// userSet changes a user's roles and custom claims: --role replaces the
// roles, while the claim flags change the named claims and keep the
// others. The claims are read and written back with a compare-and-swap on
// the user's version, so a change made meanwhile (by the admin API, say)
// is never lost: the command starts again on the newer user.
func (c *cli) userSet(ctx context.Context, s tokend.Store, nameOrID string, roles []string, clearRoles bool, set, setJSON map[string]any, unset []string, clearClaims bool) error {
	m := manager(s)
	for attempt := 0; ; attempt++ {
		u, err := m.FindUser(ctx, nameOrID)
		if err != nil {
			return err
		}
		var p grant.UserPatch
		if len(roles) > 0 || clearRoles {
			r := append([]string{}, roles...)
			p.Roles = &r
		}
		if len(set) > 0 || len(setJSON) > 0 || len(unset) > 0 || clearClaims {
			next := map[string]any{}
			if !clearClaims {
				maps.Copy(next, u.Claims)
			}
			for _, k := range unset {
				delete(next, k)
			}
			maps.Copy(next, set)
			maps.Copy(next, setJSON)
			p.Claims = &next
		}
		version := u.Version
		u, err = m.UpdateUser(ctx, u.ID, p, func(v int64) bool { return v == version })
		if tokend.ErrorCode(err) == tokend.EPRECONDITION && attempt < 5 {
			continue
		}
		if len(tokend.ErrorFields(err)) > 0 {
			return fieldUsage(tokend.ErrorFields(err))
		}
		if err != nil {
			return err
		}
		b, _ := json.Marshal(u.Claims)
		if u.Claims == nil {
			b = []byte("{}")
		}
		fmt.Fprintf(c.stdout, "user %s: roles [%s], claims %s\n", u.Username, strings.Join(u.Roles, " "), b)
		return nil
	}
}

// sessionList prints the live sessions, of one user or of everyone.
func (c *cli) sessionList(ctx context.Context, s tokend.Store, nameOrID string) error {
	m := manager(s)
	var all []*tokend.Session
	next := func(after string) ([]*tokend.Session, error) { return m.Sessions(ctx, after, 1000) }
	if nameOrID != "" {
		u, err := m.FindUser(ctx, nameOrID)
		if err != nil {
			return err
		}
		next = func(after string) ([]*tokend.Session, error) { return m.UserSessions(ctx, u.ID, after, 1000) }
	}
	for after := ""; ; {
		page, err := next(after)
		if err != nil {
			return err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	if c.json {
		out := []map[string]any{}
		for _, se := range all {
			out = append(out, map[string]any{
				"id": se.ID, "user_id": se.UserID, "client_id": nilIfEmpty(se.ClientID), "dialect": se.Dialect, "scope": se.Scope,
				"created_at": timeOrNil(se.CreatedAt), "expires_at": timeOrNil(se.ExpiresAt), "rotated_at": timeOrNil(se.RotatedAt),
			})
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tCLIENT\tDIALECT\tSCOPE\tCREATED\tEXPIRES")
	for _, se := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", se.ID, se.UserID, orDashS(se.ClientID), se.Dialect, orDashS(se.Scope),
			se.CreatedAt.UTC().Format(time.RFC3339), se.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
