package main

import (
	"context"
	"fmt"
	"strings"
)

// dispatchOther runs a command of the table that run's fixed groups do not
// name: one without subcommands (backup, migrate, version) or a group of
// its own (config), so that a command added to the table needs no other
// change.
func (c *cli) dispatchOther(ctx context.Context, cmd string, rest []string) error {
	table := c.commands()
	if _, ok := table[cmd]; ok {
		return c.dispatch(ctx, cmd, "", rest)
	}
	for name := range table {
		if !strings.HasPrefix(name, cmd+" ") {
			continue
		}
		sub := ""
		if len(rest) > 0 {
			sub = rest[0]
		}
		if sub == "-h" || sub == "--help" || sub == "help" {
			fmt.Fprint(c.stdout, usage)
			return nil
		}
		if sub == "" || strings.HasPrefix(sub, "-") {
			return usagef("%s needs a subcommand", cmd)
		}
		return c.dispatch(ctx, cmd, sub, rest[1:])
	}
	return usagef("unknown command %q", cmd)
}
