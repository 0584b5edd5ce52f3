// Command tokend is the token service: `tokend serve` runs the server, and
// the user, client and key commands manage the same store, also while a
// server runs (it sees their changes within a second).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/postgres"
	"github.com/tokend/tokend/sqlite"
)

const usage = `tokend: a self-hosted JWT token service

Usage:
  tokend serve [--addr A] [--db D] [--issuer URL] [flags]
  tokend user add NAME [--password-stdin] [--role R]... [--json]
  tokend user list [--client ID] [--json]
  tokend user disable NAME
  tokend user enable NAME
  tokend user delete NAME
  tokend user set NAME [--role R]... [--clear-roles] [--claim K=V]... [--claim-json K=JSON]... [--unset-claim K]... [--clear-claims]
  tokend user passwd NAME --password-stdin
  tokend user import FILE [--format jsonl|csv] [--on-conflict fail|skip|update] [--dry-run] [--allow-weak-hashes] [--json]
  tokend client add NAME [--grant G]... [--scope S]... [--mode sandbox|production] [--public] [--access-ttl D] [--json]
  tokend client list [--json]
  tokend client rotate-secret ID [--overlap D] [--json]
  tokend client disable ID
  tokend client enable ID
  tokend client delete ID
  tokend session list [--user NAME] [--json]
  tokend session revoke ID
  tokend audit list [--since T] [--subject S] [--limit N] [--json]
  tokend key list [--json]
  tokend key rotate [--alg ES256|EdDSA|RS256|RS512] [--prepublish D]
  tokend key export --format pem|jwk|jwks [--alg A] [--kid K]
  tokend key reseal [--old-master-key-file F] [--master-key-file F] [--remove-master-key]
  tokend backup --out FILE [--force] | --verify FILE
  tokend migrate [--dry-run]
  tokend version [--json]
  tokend config check FILE

Every flag has an environment twin: --db is TOKEND_DB, --refresh-grace is
TOKEND_REFRESH_GRACE, and so on. Run 'tokend COMMAND --help' for a command's flags.
`

// usageError is wrong usage: printed with a hint, exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	var ue usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "tokend: %s\nRun 'tokend --help' for usage.\n", ue.msg)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "tokend: %s\n", describe(err))
		os.Exit(1)
	}
}

// describe turns an error into a line for a person.
func describe(err error) string {
	switch tokend.ErrorCode(err) {
	case tokend.ENOTFOUND, tokend.ECONFLICT, tokend.EINVALID:
		return tokend.ErrorMessage(err)
	}
	return err.Error()
}

// run dispatches a command line; it is main without the process around it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	sub := ""
	if len(rest) > 0 {
		sub = rest[0]
	}
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "serve":
		return serve(ctx, rest, stdout, stderr)
	case "user", "client", "key", "audit", "session":
		if sub == "-h" || sub == "--help" || sub == "help" {
			fmt.Fprint(stdout, usage)
			return nil
		}
		if sub == "" || strings.HasPrefix(sub, "-") {
			return usagef("%s needs a subcommand", cmd)
		}
		c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
		return c.dispatch(ctx, cmd, sub, rest[1:])
	default:
		c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
		return c.dispatchOther(ctx, cmd, rest)
	}
}

// newFlags returns a FlagSet that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tokend "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args with flags allowed before and after positional
// arguments, then fills each flag not given from its environment twin
// (TOKEND_ + the flag name in upper case, dashes as underscores): every flag
// if envFlags is empty, else only those named. It checks the number of
// positional arguments.
func parse(fs *flag.FlagSet, args []string, positional int, names string, envFlags ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil || (len(envFlags) > 0 && !slices.Contains(envFlags, f.Name)) {
			return
		}
		env := "TOKEND_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("%s=%q: %v", env, v, e)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if len(pos) != positional {
		if positional == 0 {
			return nil, usagef("%s takes no arguments", fs.Name())
		}
		return nil, usagef("%s needs %s", fs.Name(), names)
	}
	return pos, nil
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

const defaultDB = "sqlite:tokend.db"

// openStore opens the store a --db value names: sqlite:PATH (or a bare
// path) or postgres://...
func openStore(ctx context.Context, dsn string, opts ...sqlite.Option) (tokend.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, dsn)
	case strings.HasPrefix(dsn, "sqlite://"):
		return sqlite.Open(ctx, strings.TrimPrefix(dsn, "sqlite://"), opts...)
	case strings.HasPrefix(dsn, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(dsn, "sqlite:"), opts...)
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("unsupported --db %q: want sqlite:PATH or postgres://...", redactDSN(dsn))
	default:
		return sqlite.Open(ctx, dsn, opts...)
	}
}

// redactDSN hides a password in a connection string before it is printed.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			return dsn[:i+3] + "***" + dsn[at:]
		}
	}
	return dsn
}
