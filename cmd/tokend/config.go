package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// The configuration file of `tokend serve` is TOML whose top-level keys are
// serve's flag names, so that every flag (also one added later) can be set
// there with nothing else to maintain: the keys are whatever the FlagSet
// holds. A value is the flag's text (a TOML string), or a TOML integer,
// float or boolean standing for the same text.
//
//	addr = "0.0.0.0:8080"
//	db = "sqlite:/var/lib/tokend/tokend.db"
//	access-ttl = "10m"
//	lockout-threshold = 5
//
// Precedence: a flag on the command line, then its environment twin, then
// the file, then the default.

// configFlags are serve's flags about the configuration itself, and what
// applying the file found.
type configFlags struct {
	file  string // --config
	print bool   // --print-config
	// lines holds, for each flag the file set, the line that set it.
	lines map[string]int
}

// notInFile are flags that mean nothing in a config file.
var notInFile = []string{"config", "print-config"}

// serveFlags makes serve's FlagSet: every setting of c, and --config and
// --print-config. It is the one list of serve's flags: serve parses it,
// the config file is checked against it, and the configuration reference
// (docs/configuration.md) is tested against it.
func serveFlags(c *serveConfig, cf *configFlags, stderr io.Writer) *flag.FlagSet {
	fs := newFlags("serve", stderr)
	c.flags(fs)
	fs.StringVar(&cf.file, "config", "", "read settings from this TOML file, keys named as the flags (flags and environment variables win over it)")
	fs.BoolVar(&cf.print, "print-config", false, "print the effective configuration, secrets redacted, and exit")
	return fs
}

// envName is the environment twin of a flag.
func envName(flagName string) string {
	return "TOKEND_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// setting is one key of a config file, its value as flag text.
type setting struct {
	key, value string
	line       int
}

// problem is something wrong at a line of the config file.
type problem struct {
	line int
	err  error
}

// joinProblems joins problems in the order of their lines.
func joinProblems(ps []problem) error {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].line < ps[j].line })
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p.err
	}
	return errors.Join(errs...)
}

// readConfigFile parses the file at path. It returns the settings, and
// every problem found (a value that no flag could take); a file that is not
// TOML at all is one error.
func readConfigFile(path string) ([]setting, []problem, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config file: %w", err)
	}
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, nil, fmt.Errorf("%s:%d: not valid TOML: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, nil, fmt.Errorf("%s: not valid TOML: %v", path, err)
	}
	lines := keyLines(data)
	var out []setting
	var errs []problem
	bad := func(s setting, format string, args ...any) {
		errs = append(errs, problem{s.line, fmt.Errorf("%s:%d: %s: "+format, append([]any{path, s.line, s.key}, args...)...)})
	}
	for key, v := range m {
		s := setting{key: key, line: lines[key]}
		switch v := v.(type) {
		case string:
			s.value = v
		case bool:
			s.value = strconv.FormatBool(v)
		case int64:
			s.value = strconv.FormatInt(v, 10)
		case float64:
			s.value = strconv.FormatFloat(v, 'g', -1, 64)
		case map[string]any:
			bad(s, "a table; settings are top-level keys named as serve's flags")
			continue
		case []any, []map[string]any:
			bad(s, "an array; write a list as one comma-separated string")
			continue
		default:
			bad(s, "a %T; want a string, number or boolean", v)
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].line < out[j].line })
	return out, errs, nil
}

// keyLines finds the line where each top-level key of a TOML document is
// first named (a key, the first part of a dotted key, or a table header).
// The TOML library keeps positions to itself, so this reads the lines;
// it skips comments and the inside of multi-line strings.
func keyLines(data []byte) map[string]int {
	out := map[string]int{}
	inMulti := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if inMulti != "" {
			if strings.Count(line, inMulti)%2 == 1 {
				inMulti = ""
			}
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		var key string
		if t[0] == '[' {
			key = strings.Trim(t, "[] \t")
			if i := strings.IndexAny(key, "]#"); i >= 0 {
				key = key[:i]
			}
		} else if i := strings.Index(t, "="); i > 0 {
			key = t[:i]
			for _, q := range []string{`"""`, `'''`} {
				if strings.Count(t[i:], q)%2 == 1 {
					inMulti = q
				}
			}
		}
		key = strings.TrimSpace(key)
		if key == "" {
			continue
		}
		if key[0] == '"' || key[0] == '\'' {
			if end := strings.IndexByte(key[1:], key[0]); end >= 0 {
				key = key[1 : end+1]
			}
		} else if i := strings.IndexByte(key, '.'); i >= 0 {
			key = strings.TrimSpace(key[:i])
		}
		if _, seen := out[key]; !seen {
			out[key] = n
		}
	}
	return out
}

// apply reads --config, if given, into fs: each setting whose flag was not
// set on the command line or by its environment twin (parse has run).
// Every problem in the file is reported at once, each with its line: an
// unknown key, a value the flag refuses, a value of the wrong shape. A
// value is checked even where a flag overrides it, so that a file is right
// or wrong whatever the environment.
func (cf *configFlags) apply(fs *flag.FlagSet) ([]problem, error) {
	if cf.file == "" {
		return nil, nil
	}
	settings, errs, err := readConfigFile(cf.file)
	if err != nil {
		return nil, err
	}
	// A scratch set of the same flags checks each value without touching
	// the real one (a repeatable flag must be set once).
	var sc serveConfig
	var scf configFlags
	scratch := serveFlags(&sc, &scf, io.Discard)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cf.lines = map[string]int{}
	for _, s := range settings {
		where := fmt.Sprintf("%s:%d: %s", cf.file, s.line, s.key)
		bad := func(format string, args ...any) {
			errs = append(errs, problem{s.line, fmt.Errorf("%s: "+format, append([]any{where}, args...)...)})
		}
		if fs.Lookup(s.key) == nil || slices.Contains(notInFile, s.key) {
			msg := "unknown key (keys are serve's flag names)"
			if alt := strings.ReplaceAll(s.key, "_", "-"); alt != s.key && fs.Lookup(alt) != nil {
				msg = fmt.Sprintf("unknown key; did you mean %s?", alt)
			}
			if slices.Contains(notInFile, s.key) {
				msg = "not a setting a config file can hold"
			}
			bad("%s", msg)
			continue
		}
		if err := scratch.Set(s.key, s.value); err != nil {
			bad("invalid value %q: %s", s.value, wantFor(scratch.Lookup(s.key), err))
			continue
		}
		cf.lines[s.key] = s.line
		if !set[s.key] {
			if err := fs.Set(s.key, s.value); err != nil {
				bad("invalid value %q: %s", s.value, wantFor(fs.Lookup(s.key), err))
			}
		}
	}
	return errs, nil
}

// wantFor says what a flag takes, for an error about its value.
func wantFor(f *flag.Flag, err error) string {
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			return "want a duration such as 90s, 15m or 720h"
		case bool:
			return "want true or false"
		case int, int64:
			return "want a whole number"
		case uint, uint64:
			return "want a whole number, 0 or more"
		case float64:
			return "want a number"
		}
	}
	return err.Error()
}

// check applies the config file to fs, then validates c: the problems of
// both at once, each of the file's with its line.
func (cf *configFlags) check(fs *flag.FlagSet, c *serveConfig) error {
	ps, err := cf.apply(fs)
	if err != nil {
		return err
	}
	return joinProblems(append(ps, cf.attribute(c.validate())...))
}

var flagInMessage = regexp.MustCompile(`--([a-z0-9][a-z0-9-]*)`)

// attribute adds the file and line to each of validate's problems that
// names a flag whose value came from the config file.
func (cf *configFlags) attribute(err error) []problem {
	if err == nil {
		return nil
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]problem, 0, len(list))
	for _, e := range list {
		line := 1 << 30 // problems of no line come after the others
		if m := flagInMessage.FindStringSubmatch(e.Error()); m != nil {
			if l, ok := cf.lines[m[1]]; ok {
				line = l
				e = fmt.Errorf("%s:%d: %s: %w", cf.file, line, m[1], e)
			}
		}
		out = append(out, problem{line, e})
	}
	return out
}

// commandLineFlags returns the names of the flags given in args.
func commandLineFlags(args []string) map[string]bool {
	out := map[string]bool{}
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		out[name] = true
	}
	return out
}

// redacted stands where a secret was.
const redacted = "REDACTED"

// secretFlag reports whether a flag's value is itself a secret (rather
// than, say, the path of a file holding one), by its name.
func secretFlag(name string) bool {
	if strings.HasSuffix(name, "-file") || name == "tls-key" {
		return false
	}
	for _, w := range []string{"secret", "password", "passphrase", "credential"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return strings.HasSuffix(name, "-key") || name == "key"
}

var keywordPassword = regexp.MustCompile(`(?i)\b(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// redactValue hides passwords inside a value: a URL's password and its
// password query parameters, and password=... in key=value connection
// strings.
func redactValue(v string) string {
	if strings.Contains(v, "://") {
		if u, err := url.Parse(v); err == nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), redacted)
			}
			q := u.Query()
			changed := false
			for k := range q {
				if strings.Contains(strings.ToLower(k), "password") {
					q.Set(k, redacted)
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
		return redactDSN(v)
	}
	return keywordPassword.ReplaceAllString(v, "${1}="+redacted)
}

// printConfig writes the effective configuration as a TOML file that
// --config reads back, each line saying where its value came from, with
// secrets redacted.
func (cf *configFlags) printConfig(fs *flag.FlagSet, args []string, w io.Writer) error {
	cmdline := commandLineFlags(args)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var b bytes.Buffer
	b.WriteString("# Effective configuration of tokend serve (flags win over environment\n")
	b.WriteString("# variables, which win over the config file, which wins over defaults).\n")
	b.WriteString("# Secrets are " + redacted + ".\n")
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if slices.Contains(notInFile, f.Name) || err != nil {
			return
		}
		source := "default"
		_, inEnv := os.LookupEnv(envName(f.Name))
		switch {
		case cmdline[f.Name]:
			source = "flag"
		case set[f.Name] && inEnv:
			source = "environment " + envName(f.Name)
		case cf.lines[f.Name] > 0:
			source = fmt.Sprintf("%s line %d", cf.file, cf.lines[f.Name])
		}
		var v any = f.Value.String()
		if g, ok := f.Value.(flag.Getter); ok {
			switch x := g.Get().(type) {
			case bool, int, int64, uint, uint64, float64:
				v = x
			case time.Duration:
				v = x.String()
			}
		}
		if s, ok := v.(string); ok {
			if secretFlag(f.Name) && s != "" {
				v = redacted
			} else {
				v = redactValue(s)
			}
		}
		var line bytes.Buffer
		if err = toml.NewEncoder(&line).Encode(map[string]any{f.Name: v}); err != nil {
			return
		}
		fmt.Fprintf(&b, "%s # %s\n", strings.TrimRight(line.String(), "\n"), source)
	})
	if err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	if os.Getenv("TOKEND_MASTER_KEY") != "" {
		b.WriteString("# master key: from the environment variable TOKEND_MASTER_KEY (" + redacted + ")\n")
	}
	_, err = w.Write(b.Bytes())
	return err
}

// configCheckCommand is `tokend config check FILE`: read the file as serve
// would, with no flags and no environment, and report every problem.
func (c *cli) configCheckCommand() command {
	return command{
		positional: 1, names: "a config file",
		direct: func(_ context.Context, _ string, a []string) error { return c.configCheck(a[0]) },
	}
}

func (c *cli) configCheck(path string) error {
	var sc serveConfig
	var cf configFlags
	fs := serveFlags(&sc, &cf, io.Discard)
	cf.file = path
	if err := cf.check(fs, &sc); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s: ok (%d settings)\n", path, len(cf.lines))
	return nil
}
