package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/secret"
)

// importCommand is `tokend user import FILE`: users from another system
// (grant.Importer), from a JSON Lines or CSV file or standard input, with
// a progress line on a terminal and a summary line at the end. The exit
// status is 1 if any record was rejected.
func (c *cli) importCommand() command {
	var format, onConflict string
	var dryRun, allowWeak bool
	argon := secret.DefaultParams
	return command{
		positional: 1, names: "a file to import (- for standard input)",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&format, "format", "", "jsonl or csv (default: from the file's extension; jsonl for standard input)")
			fs.StringVar(&onConflict, "on-conflict", grant.OnConflictSkip, "a user already there: fail (a rejection), skip, or update")
			fs.BoolVar(&dryRun, "dry-run", false, "check every record and tell what would happen; write nothing")
			fs.BoolVar(&allowWeak, "allow-weak-hashes", false, "accept unsalted or single-round MD5 and SHA-1 hashes")
			fs.Func("argon2-memory", "argon2id memory for plaintext passwords, KiB (default 19456)", uintInto(&argon.MemoryKiB))
			fs.Func("argon2-time", "argon2id passes for plaintext passwords (default 2)", uintInto(&argon.Time))
			fs.BoolVar(&c.json, "json", false, "print the summary as JSON")
		},
		check: func(a []string) error {
			if format == "" {
				format = formatOf(a[0])
				if format == "" {
					return usagef("cannot tell the format of %s from its name: pass --format jsonl or --format csv", a[0])
				}
			}
			if format != grant.FormatJSONL && format != grant.FormatCSV {
				return usagef("--format %q: want jsonl or csv", format)
			}
			if !slices.Contains([]string{grant.OnConflictFail, grant.OnConflictSkip, grant.OnConflictUpdate}, onConflict) {
				return usagef("--on-conflict %q: want fail, skip or update", onConflict)
			}
			if err := argon.Validate(); err != nil {
				return usageError{err.Error()}
			}
			return nil
		},
		run: func(ctx context.Context, s tokend.Store, a []string) error {
			opts := grant.ImportOptions{OnConflict: onConflict, DryRun: dryRun, AllowWeakHashes: allowWeak}
			return c.userImport(ctx, s, a[0], format, opts, argon)
		},
	}
}

// formatOf names the format of a file by its extension ("" if unknown).
func formatOf(name string) string {
	if name == "-" {
		return grant.FormatJSONL
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jsonl", ".ndjson":
		return grant.FormatJSONL
	case ".csv":
		return grant.FormatCSV
	}
	return ""
}

func (c *cli) userImport(ctx context.Context, s tokend.Store, file, format string, opts grant.ImportOptions, argon secret.Params) error {
	in, size, name, err := c.openSource(file)
	if err != nil {
		return err
	}
	defer in.Close()
	m := manager(s)
	m.Params = argon
	im, err := m.NewImporter(opts)
	if err != nil {
		return err
	}
	p := newProgress(c.stderr, c.stdout)
	start := time.Now()
	src := &countingReader{r: in, seen: func(read int64) {
		elapsed := time.Since(start).Seconds()
		n := im.Records()
		line := fmt.Sprintf("importing %s: %d records, %.0f/s", name, n, float64(n)/max(elapsed, 1e-3))
		if size > 0 && read > 0 {
			eta := time.Duration(float64(size-read) / (float64(read) / elapsed) * float64(time.Second))
			line += fmt.Sprintf(", %d%%, ETA %s", min(100, read*100/size), eta.Round(time.Second))
		}
		p.update("%s", line)
	}}
	read := grant.ReadJSONL
	if format == grant.FormatCSV {
		read = grant.ReadCSV
	}
	err = read(ctx, src, im)
	if tokend.ErrorCode(err) == tokend.EINVALID && im.Records() == 0 {
		p.clear()
		return err // a CSV header that names no known columns: nothing was read
	}
	sum, ferr := im.Finish(ctx)
	if err == nil {
		err = ferr
	}
	elapsed := time.Since(start)
	if c.json {
		p.clear()
		if jerr := c.printJSON(sum); jerr != nil {
			return jerr
		}
	} else {
		what := "import"
		if sum.DryRun {
			what = "import (dry run: nothing written)"
		}
		p.done("%s: %s: %d records in %s (%.0f/s): %d imported, %d updated, %d skipped, %d rejected", what, name,
			sum.Records(), elapsed.Round(time.Millisecond), float64(sum.Records())/max(elapsed.Seconds(), 1e-3),
			sum.Imported, sum.Updated, sum.Skipped, sum.Rejected)
		for _, r := range sum.Rejections {
			fmt.Fprintf(c.stderr, "line %d: %s\n", r.Line, r.Reason)
		}
		if more := sum.Rejected - len(sum.Rejections); more > 0 {
			fmt.Fprintf(c.stderr, "... and %d more rejections\n", more)
		}
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	if sum.Rejected > 0 {
		return fmt.Errorf("import %s: %d of %d records rejected", name, sum.Rejected, sum.Records())
	}
	return nil
}

// openSource opens the file to import, or standard input for "-", and
// tells its size when it is known (-1 otherwise).
func (c *cli) openSource(file string) (io.ReadCloser, int64, string, error) {
	if file == "-" {
		var size int64 = -1
		if f, ok := c.stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				size = st.Size()
			}
		}
		return io.NopCloser(c.stdin), size, "standard input", nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, "", err
	}
	var size int64 = -1
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, file, nil
}

// countingReader tells seen how many bytes were read so far, at every read.
type countingReader struct {
	r    io.Reader
	n    int64
	seen func(n int64)
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	r.seen(r.n)
	return n, err
}
