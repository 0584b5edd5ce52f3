package main

import (
	"strings"
	"testing"
)

// `key rotate --alg X` adds a key whatever X; when the store shows that no
// server signs with X (no live key of X), the output says so, and what
// would make the key sign. A rotation of a line in use says nothing more.
func TestKeyRotateUnusedAlgorithm(t *testing.T) {
	f := newFixture(t)
	first := f.must("", "key", "rotate")
	if !strings.Contains(first, "no live ES256 key") || !strings.Contains(first, "--alg ES256 (the default)") ||
		!strings.Contains(first, "algorithms with live keys: none") {
		t.Errorf("first rotation of a fresh store:\n%s", first)
	}

	again := f.must("", "key", "rotate")
	if strings.Contains(again, "note") || strings.Count(again, "\n") != 1 {
		t.Errorf("rotation of the ES256 line in use:\n%s", again)
	}

	out := f.must("", "key", "rotate", "--alg", "RS256")
	for _, want := range []string{
		"new RS256 key", "no live RS256 key", "no tokend server signs with RS256", "algorithms with live keys: ES256",
		"nothing signs with it until a server starts with --alg RS256", "--atoti-alg",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rotation of an unused algorithm does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "(the default)") {
		t.Errorf("RS256 called the default:\n%s", out)
	}
	if st := f.keyStatuses("RS256"); len(st) != 1 || st[0] != "active" {
		t.Errorf("the RS256 key was not added: %v", st)
	}
	if out := f.must("", "key", "rotate", "--alg", "RS256"); strings.Contains(out, "note") {
		t.Errorf("second RS256 rotation still warns:\n%s", out)
	}
}
