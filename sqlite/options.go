package sqlite

import (
	"fmt"
	"strings"
)

// Option tunes how Open opens the database file.
type Option func(*options)

type options struct {
	synchronous string
}

// Synchronous sets SQLite's synchronous setting of the connections Open
// makes, "normal" (the default) or "full"; ParseSynchronous checks a value.
// In WAL mode, normal loses no committed transaction when the process
// crashes, but may lose the last ones when the machine loses power or the
// kernel crashes (the database stays consistent either way); full makes
// every commit wait until the WAL is on disk.
func Synchronous(mode string) Option {
	return func(o *options) { o.synchronous = strings.ToUpper(mode) }
}

// ParseSynchronous checks a synchronous setting: normal or full, in any case.
func ParseSynchronous(mode string) error {
	switch strings.ToLower(mode) {
	case "normal", "full":
		return nil
	}
	return fmt.Errorf("synchronous %q: want normal or full", mode)
}

// synchronous returns the pragma value opts ask for: NORMAL unless told
// otherwise (an unknown value also gives NORMAL; ParseSynchronous is for
// callers to check their input first).
func synchronous(opts []Option) string {
	o := options{synchronous: "NORMAL"}
	for _, f := range opts {
		f(&o)
	}
	if o.synchronous != "FULL" {
		return "NORMAL"
	}
	return "FULL"
}
