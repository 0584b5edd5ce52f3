package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary serve as the ceiling's child process, as
// the real binary does, so that the tests run the ceiling out of process.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == ceilingChildArg {
		if err := ceilingChild(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
