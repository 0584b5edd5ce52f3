package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
)

// maxClientAccessTTL caps a client app's own access-token lifetime, so
// that a retired key is published long enough for every token it signed.
const maxClientAccessTTL = grant.MaxClientAccessTTL

// cli runs the management commands against a store.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	db             string
	json           bool
	masterKeyFile  string
}

type command struct {
	positional int
	names      string
	flags      func(fs *flag.FlagSet)
	// check validates the flags and arguments before the store is opened,
	// so that wrong usage is reported as such whatever the store.
	check func(args []string) error
	run   func(ctx context.Context, s tokend.Store, args []string) error
	// direct runs instead of run for a command that must not open the
	// store as the others do (opening applies migrations): it gets --db.
	direct func(ctx context.Context, db string, args []string) error
}

func (c *cli) dispatch(ctx context.Context, group, sub string, args []string) error {
	name := strings.TrimSpace(group + " " + sub)
	cmd, ok := c.commands()[name]
	if !ok {
		return usagef("unknown command %q", name)
	}
	fs := newFlags(name, c.stderr)
	fs.StringVar(&c.db, "db", defaultDB, "store: sqlite:PATH or postgres://... (env TOKEND_DB)")
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	// Of the management commands' flags only --db has an environment twin:
	// the server's settings (TOKEND_ALG, TOKEND_ACCESS_TTL, ...) must not
	// leak into the objects these commands create.
	pos, err := parse(fs, args, cmd.positional, cmd.names, "db")
	if err != nil {
		return err
	}
	if cmd.check != nil {
		if err := cmd.check(pos); err != nil {
			return err
		}
	}
	if cmd.direct != nil {
		return cmd.direct(ctx, c.db, pos)
	}
	// A command's change is on disk when it exits (synchronous=FULL: one
	// sync per command, which costs a command nothing that matters).
	store, err := openStore(ctx, c.db, sqlite.Synchronous("full"))
	if err != nil {
		return err
	}
	defer store.Close()
	warnLooseFiles(slog.New(slog.NewTextHandler(c.stderr, nil)), store)
	return cmd.run(grant.WithActor(ctx, "cli"), store, pos)
}

func (c *cli) commands() map[string]command {
	var (
		passwordStdin, public bool
		keepSessions          bool
		roles, grants, scopes listFlag
		clientID, mode, alg   string
		overlap, prepublish   time.Duration
		accessTTL             time.Duration
		argon                 = secret.DefaultParams
		since, subject        string
		sinceT                time.Time
		limit                 int
	)
	jsonFlag := func(fs *flag.FlagSet) { fs.BoolVar(&c.json, "json", false, "print JSON") }
	argonFlags := func(fs *flag.FlagSet) {
		fs.Func("argon2-memory", "argon2id memory, KiB (default 19456)", uintInto(&argon.MemoryKiB))
		fs.Func("argon2-time", "argon2id passes (default 2)", uintInto(&argon.Time))
	}
	checkArgon := func() error {
		if err := argon.Validate(); err != nil {
			return usageError{err.Error()}
		}
		return nil
	}
	cmds := map[string]command{
		"user add": {
			positional: 1, names: "a user name",
			flags: func(fs *flag.FlagSet) {
				fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input (one line)")
				fs.Var(&roles, "role", "a role of the user (repeatable)")
				argonFlags(fs)
				jsonFlag(fs)
			},
			check: func(a []string) error {
				_, roleErrs := grant.CheckRoles("roles", roles)
				if errs := append(grant.CheckUsername("username", a[0]), roleErrs...); len(errs) > 0 {
					return fieldUsage(errs)
				}
				return checkArgon()
			},
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				return c.userAdd(ctx, s, a[0], passwordStdin, roles, argon)
			},
		},
		"user list": {
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&clientID, "client", "", "list the end users of this client app")
				jsonFlag(fs)
			},
			run: func(ctx context.Context, s tokend.Store, a []string) error { return c.userList(ctx, s, clientID) },
		},
		"user disable": {
			positional: 1, names: "a user name",
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				return c.setUserDisabled(ctx, s, a[0], true)
			},
		},
		"user passwd": {
			positional: 1, names: "a user name",
			flags: func(fs *flag.FlagSet) {
				fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input (one line)")
				fs.BoolVar(&keepSessions, "keep-sessions", false, "keep the user's sessions and tokens (by default a new password ends them)")
				argonFlags(fs)
			},
			check: func(a []string) error {
				if !passwordStdin {
					return usagef("user passwd needs --password-stdin")
				}
				return checkArgon()
			},
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				u, err := findUser(ctx, s, a[0])
				if err != nil {
					return err
				}
				pw, err := c.readPassword()
				if err != nil {
					return err
				}
				m := manager(s)
				m.Params = argon
				if err := m.SetUserPassword(ctx, u.ID, pw, keepSessions); err != nil {
					return err
				}
				if keepSessions {
					fmt.Fprintf(c.stdout, "password of %s changed; their sessions and tokens are kept\n", u.Username)
				} else {
					fmt.Fprintf(c.stdout, "password of %s changed; their sessions are ended and the tokens issued to them before now are revoked\n", u.Username)
				}
				return nil
			},
		},
		"client add": {
			positional: 1, names: "a client name",
			flags: func(fs *flag.FlagSet) {
				fs.Var(&grants, "grant", "an allowed grant: password, client_credentials, refresh_token (repeatable)")
				fs.Var(&scopes, "scope", "an allowed scope (repeatable)")
				fs.StringVar(&mode, "mode", tokend.ModeProduction, "sandbox or production")
				fs.BoolVar(&public, "public", false, "a public client: no secret (password and refresh_token grants)")
				fs.DurationVar(&accessTTL, "access-ttl", 0, "this client's access-token lifetime (default: the server's)")
				jsonFlag(fs)
			},
			check: func(a []string) error {
				var err error
				grants, err = checkClient(a[0], grants, scopes, mode, public, accessTTL)
				return err
			},
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				return c.clientAdd(ctx, s, a[0], grants, scopes, mode, public, accessTTL)
			},
		},
		"client list": {
			flags: jsonFlag,
			run:   func(ctx context.Context, s tokend.Store, a []string) error { return c.clientList(ctx, s) },
		},
		"client rotate-secret": {
			positional: 1, names: "a client id",
			flags: func(fs *flag.FlagSet) {
				fs.DurationVar(&overlap, "overlap", 0, "how long the old secret keeps working (default: not at all)")
				jsonFlag(fs)
			},
			check: func(a []string) error {
				if overlap < 0 {
					return usagef("--overlap must not be negative")
				}
				return nil
			},
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				sec, cl, err := manager(s).RotateSecret(ctx, a[0], overlap)
				if err != nil {
					return err
				}
				return c.printSecret(cl.ID, sec)
			},
		},
		"client disable": {
			positional: 1, names: "a client id",
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				return c.setClientDisabled(ctx, s, a[0], true)
			},
		},
		"audit list": {
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&since, "since", "", "only events at or after this time (RFC 3339, or a duration ago such as 1h)")
				fs.StringVar(&subject, "subject", "", "only events of this subject (user id or name, client id)")
				fs.IntVar(&limit, "limit", 1000, "at most this many events (the oldest that match)")
				jsonFlag(fs)
			},
			check: func(a []string) error {
				var err error
				sinceT, err = parseSince(since, time.Now())
				if err != nil {
					return err
				}
				if limit < 1 {
					return usagef("--limit must be at least 1")
				}
				return nil
			},
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				return c.auditList(ctx, s, tokend.AuditQuery{Since: sinceT, Subject: subject, Limit: limit, Ascending: true})
			},
		},
		"key list": {
			flags: jsonFlag,
			run:   func(ctx context.Context, s tokend.Store, a []string) error { return c.keyList(ctx, s) },
		},
		"backup":       c.backupCommand(),
		"migrate":      c.migrateCommand(),
		"version":      c.versionCommand(),
		"config check": c.configCheckCommand(),
		"key rotate": {
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&alg, "alg", "ES256", "algorithm of the new key: ES256, EdDSA, RS256 or RS512")
				fs.DurationVar(&prepublish, "prepublish", 0, "publish the new key this long before it signs (default: sign at once)")
				fs.StringVar(&c.masterKeyFile, "master-key-file", "", "file holding the master key (or set TOKEND_MASTER_KEY)")
			},
			check: func(a []string) error {
				if !keys.ValidAlg(alg) {
					return usagef("--alg %q: want ES256, EdDSA, RS256 or RS512", alg)
				}
				if prepublish < 0 {
					return usagef("--prepublish must not be negative")
				}
				return nil
			},
			run: func(ctx context.Context, s tokend.Store, a []string) error {
				return c.keyRotate(ctx, s, alg, prepublish)
			},
		},
		"key reseal":  c.keyReseal(),
		"user import": c.importCommand(),
		"key export":  c.keyExportCommand(),
	}
	maps.Copy(cmds, c.manageCommands())
	return cmds
}

func uintInto(dst *uint32) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return errors.New("want a whole number")
		}
		*dst = uint32(n)
		return nil
	}
}

// readPassword reads one line from standard input, without its line ending.
func (c *cli) readPassword() (string, error) {
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", tokend.Errorf(tokend.EINVALID, "no password on standard input")
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", tokend.Errorf(tokend.EINVALID, "the password must not be empty")
	}
	if len(line) > 1024 {
		return "", tokend.Errorf(tokend.EINVALID, "the password is longer than 1024 bytes")
	}
	return line, nil
}

// validName checks a user or client name with the engine's rule.
func validName(kind, s string) error {
	if errs := grant.CheckName(kind, s); len(errs) > 0 {
		return tokend.Errorf(tokend.EINVALID, "%s %s", kind, errs[0].Detail)
	}
	return nil
}

// findUser finds a user by name, or by id.
func findUser(ctx context.Context, s tokend.Store, nameOrID string) (*tokend.User, error) {
	return manager(s).FindUser(ctx, nameOrID)
}

func (c *cli) userAdd(ctx context.Context, s tokend.Store, name string, fromStdin bool, roles []string, argon secret.Params) error {
	var pw string
	generated := false
	if fromStdin {
		var err error
		if pw, err = c.readPassword(); err != nil {
			return err
		}
	} else {
		pw, generated = secret.NewClientSecret()[:24], true
	}
	m := manager(s)
	m.Params = argon
	u, err := m.CreateUser(ctx, grant.NewUser{Username: name, Password: pw, Roles: roles})
	if err != nil {
		return err
	}
	if c.json {
		out := map[string]any{"id": u.ID, "username": u.Username, "roles": nonNil(u.Roles)}
		if generated {
			out["password"] = pw
		}
		return c.printJSON(out)
	}
	fmt.Fprintf(c.stdout, "created user %s (id %s)\n", u.Username, u.ID)
	if generated {
		fmt.Fprintf(c.stdout, "password: %s\n(shown once; change it with 'tokend user passwd %s --password-stdin')\n", pw, u.Username)
	}
	return nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func (c *cli) userList(ctx context.Context, s tokend.Store, clientID string) error {
	users, err := s.ListUsers(ctx, tokend.UserFilter{ClientID: clientID})
	if err != nil {
		return err
	}
	if c.json {
		out := []map[string]any{}
		for _, u := range users {
			m := map[string]any{
				"id": u.ID, "username": u.Username, "roles": nonNil(u.Roles), "disabled": u.Disabled,
				"created_at": timeOrNil(u.CreatedAt), "last_login_at": timeOrNil(u.LastLoginAt), "last_refresh_at": timeOrNil(u.LastRefreshAt),
			}
			if u.ClientID != "" {
				m["client_id"] = u.ClientID
			}
			out = append(out, m)
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tID\tROLES\tDISABLED\tLAST LOGIN\tLAST REFRESH")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", u.Username, u.ID, strings.Join(u.Roles, ","), u.Disabled, orDash(u.LastLoginAt), orDash(u.LastRefreshAt))
	}
	return tw.Flush()
}

func orDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// checkClient validates `client add`'s input and returns the grants to
// give, filling in the defaults: client_credentials for a confidential
// client, password and refresh_token for a public one.
func checkClient(name string, grants, scopes []string, mode string, public bool, accessTTL time.Duration) ([]string, error) {
	n := grant.NewClient{Name: name, Public: public, Grants: grants, Scopes: scopes, Mode: mode, AccessTTL: accessTTL}
	if errs := n.Check(); len(errs) > 0 {
		return nil, fieldUsage(errs)
	}
	return n.Grants, nil
}

func (c *cli) clientAdd(ctx context.Context, s tokend.Store, name string, grants, scopes []string, mode string, public bool, accessTTL time.Duration) error {
	cl, sec, err := manager(s).CreateClient(ctx, grant.NewClient{Name: name, Public: public, Grants: grants, Scopes: scopes, Mode: mode, AccessTTL: accessTTL})
	if err != nil {
		return err
	}
	if public {
		if c.json {
			return c.printJSON(map[string]any{"client_id": cl.ID, "public": true})
		}
		fmt.Fprintf(c.stdout, "client_id: %s\n(public client: no secret)\n", cl.ID)
		return nil
	}
	return c.printSecret(cl.ID, sec)
}

func (c *cli) printSecret(id, sec string) error {
	if c.json {
		return c.printJSON(map[string]string{"client_id": id, "client_secret": sec})
	}
	fmt.Fprintf(c.stdout, "client_id: %s\nclient_secret: %s\n(the secret is shown once)\n", id, sec)
	return nil
}

func (c *cli) clientList(ctx context.Context, s tokend.Store) error {
	clients, err := s.ListClients(ctx)
	if err != nil {
		return err
	}
	if c.json {
		out := []map[string]any{}
		for _, cl := range clients {
			m := map[string]any{
				"client_id": cl.ID, "name": cl.Name, "public": cl.Public, "grants": nonNil(cl.Grants),
				"scopes": nonNil(cl.Scopes), "mode": cl.Mode, "disabled": cl.Disabled, "created_at": timeOrNil(cl.CreatedAt),
			}
			if cl.AccessTTL > 0 {
				m["access_ttl"] = cl.AccessTTL.String()
			}
			out = append(out, m)
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tNAME\tGRANTS\tSCOPES\tMODE\tPUBLIC\tDISABLED")
	for _, cl := range clients {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%v\n", cl.ID, cl.Name, strings.Join(cl.Grants, ","), strings.Join(cl.Scopes, ","), cl.Mode, cl.Public, cl.Disabled)
	}
	return tw.Flush()
}

func (c *cli) keyList(ctx context.Context, s tokend.Store) error {
	infos, err := manager(s).Keys(ctx)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, k := range infos {
		status := k.Status
		if status == grant.KeySigning {
			status = "active" // the word this command has always printed
		}
		out = append(out, map[string]any{"kid": k.Kid, "alg": k.Alg, "status": status,
			"created_at": timeOrNil(k.CreatedAt), "activates_at": timeOrNil(k.ActivatesAt), "revoked_at": timeOrNil(k.RevokedAt)})
	}
	if c.json {
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATUS\tCREATED\tSIGNS FROM")
	for _, k := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\n", k["kid"], k["alg"], k["status"], k["created_at"], k["activates_at"])
	}
	return tw.Flush()
}

func (c *cli) keyRotate(ctx context.Context, s tokend.Store, alg string, prepublish time.Duration) error {
	vault, err := keys.LoadVault(os.Getenv("TOKEND_MASTER_KEY"), c.masterKeyFile)
	if err != nil {
		return err
	}
	stored, err := s.ListKeys(ctx)
	if err != nil {
		return err
	}
	m := manager(s)
	m.Vault = vault
	k, err := m.RotateKey(ctx, alg, prepublish)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "new %s key %s signs from %s\n", alg, k.Kid, k.ActivatesAt.UTC().Format(time.RFC3339))
	if note := unusedAlgNote(stored, alg); note != "" {
		fmt.Fprintln(c.stdout, note)
	}
	return nil
}

// parseSince reads --since: an RFC 3339 time, or a duration before now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("--since %q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration such as 1h", v)
}

func (c *cli) auditList(ctx context.Context, s tokend.Store, q tokend.AuditQuery) error {
	events, err := manager(s).Audit(ctx, q)
	if err != nil {
		return err
	}
	if c.json {
		out := []map[string]any{}
		for _, e := range events {
			out = append(out, map[string]any{"seq": e.Seq, "at": e.At.UTC().Format(time.RFC3339Nano), "event": e.Event,
				"subject": e.Subject, "client_id": e.ClientID, "dialect": e.Dialect, "ip": e.IP, "outcome": e.Outcome, "detail": e.Detail,
				"count": e.Count, "actor": e.Actor})
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tCOUNT\tOUTCOME\tSUBJECT\tCLIENT\tDIALECT\tIP\tACTOR\tDETAIL")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Event, e.Count, e.Outcome,
			orDashS(e.Subject), orDashS(e.ClientID), orDashS(e.Dialect), orDashS(e.IP), orDashS(e.Actor), e.Detail)
	}
	return tw.Flush()
}

func orDashS(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// audit records what a management command did, in the same trail as the
// server's events.
func audit(ctx context.Context, s tokend.Store, event, subject, clientID, detail string) error {
	return s.AppendAudit(ctx, []tokend.AuditEvent{{At: time.Now(), Event: event, Subject: subject, ClientID: clientID, Dialect: "cli", Outcome: "success", Detail: detail, Actor: "cli"}})
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
