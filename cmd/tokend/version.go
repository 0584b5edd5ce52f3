package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/tokend/tokend/postgres"
	"github.com/tokend/tokend/sqlite"
)

// buildInfo is what a binary knows about itself.
type buildInfo struct {
	Version    string `json:"version"`     // the module version Go stamped ("(devel)" if none)
	Commit     string `json:"commit"`      // the VCS revision it was built from, if known
	CommitTime string `json:"commit_time"` // that revision's time, if known
	Modified   bool   `json:"modified"`    // built with uncommitted changes
	Go         string `json:"go"`
	// The schema version this binary's migrations bring a store to.
	SchemaSQLite   int `json:"schema_version_sqlite"`
	SchemaPostgres int `json:"schema_version_postgres"`
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(unknown)", Go: runtime.Version(),
		SchemaSQLite: sqlite.SchemaVersion(), SchemaPostgres: postgres.SchemaVersion()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.Version = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.CommitTime = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// versionCommand is `tokend version`: the version, the commit it was built
// from (Go stamps both from the VCS at build time) and the schema version
// its migrations make, which is what decides whether it may run on a store.
func (c *cli) versionCommand() command {
	return command{
		flags:  func(fs *flag.FlagSet) { fs.BoolVar(&c.json, "json", false, "print JSON") },
		direct: func(ctx context.Context, _ string, _ []string) error { return c.version(ctx) },
	}
}

func (c *cli) version(_ context.Context) error {
	b := readBuildInfo()
	if c.json {
		return c.printJSON(b)
	}
	fmt.Fprintf(c.stdout, "tokend %s\n", b.Version)
	commit := b.Commit
	if commit == "" {
		commit = "unknown (built without version control information)"
	} else {
		if b.CommitTime != "" {
			commit += " (" + b.CommitTime + ")"
		}
		if b.Modified {
			commit += " with uncommitted changes"
		}
	}
	fmt.Fprintf(c.stdout, "commit: %s\n", commit)
	if b.SchemaSQLite == b.SchemaPostgres {
		fmt.Fprintf(c.stdout, "schema version: %d\n", b.SchemaSQLite)
	} else {
		fmt.Fprintf(c.stdout, "schema version: %d (SQLite), %d (PostgreSQL)\n", b.SchemaSQLite, b.SchemaPostgres)
	}
	fmt.Fprintf(c.stdout, "go: %s\n", b.Go)
	return nil
}
