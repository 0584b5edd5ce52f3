package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

type listedKey struct {
	Kid         string  `json:"kid"`
	Alg         string  `json:"alg"`
	Status      string  `json:"status"`
	ActivatesAt string  `json:"activates_at"`
	RevokedAt   *string `json:"revoked_at"`
}

func (f *fixture) keys() []listedKey {
	f.t.Helper()
	out := f.must("", "key", "list", "--json")
	if strings.Contains(out, "private") || strings.Contains(out, `"d"`) {
		f.t.Errorf("key list shows private material:\n%s", out)
	}
	return decodeOne[[]listedKey](f.t, out)
}

func (f *fixture) keyStatuses(alg string) []string {
	f.t.Helper()
	var st []string
	for _, k := range f.keys() {
		if k.Alg == alg {
			st = append(st, k.Status)
		}
	}
	return st
}

func TestKeys(t *testing.T) {
	t.Run("rotate", func(t *testing.T) {
		f := newFixture(t)
		if got := f.keys(); len(got) != 0 {
			t.Fatalf("fresh store lists keys %v", got)
		}
		out := f.must("", "key", "rotate")
		got := f.keys()
		if len(got) != 1 || got[0].Alg != "ES256" || got[0].Status != "active" || got[0].Kid == "" || got[0].RevokedAt != nil {
			t.Fatalf("after one rotate: %+v", got)
		}
		if !strings.Contains(out, got[0].Kid) || !strings.Contains(out, "ES256") {
			t.Errorf("rotate output %q does not name the key", out)
		}
		first := got[0].Kid

		f.must("", "key", "rotate")
		got = f.keys()
		if len(got) != 2 || got[0].Kid != first || got[0].Status != "retired" || got[1].Status != "active" {
			t.Fatalf("after a second rotate: %+v", got)
		}

		f.must("", "key", "rotate", "--alg", "EdDSA")
		if st := f.keyStatuses("EdDSA"); !slices.Equal(st, []string{"active"}) {
			t.Errorf("EdDSA line %v", st)
		}
		if st := f.keyStatuses("ES256"); !slices.Equal(st, []string{"retired", "active"}) {
			t.Errorf("an EdDSA rotation changed the ES256 line: %v", st)
		}

		text := f.must("", "key", "list")
		for _, want := range []string{"KID", first, "retired", "EdDSA"} {
			if !strings.Contains(text, want) {
				t.Errorf("text list lacks %q:\n%s", want, text)
			}
		}
	})

	t.Run("prepublish", func(t *testing.T) {
		f := newFixture(t)
		f.must("", "key", "rotate")
		before := time.Now()
		f.must("", "key", "rotate", "--prepublish", "1h")
		got := f.keys()
		if len(got) != 2 || got[0].Status != "active" || got[1].Status != "announced" {
			t.Fatalf("after a prepublished rotate: %+v", got)
		}
		at, err := time.Parse(time.RFC3339, got[1].ActivatesAt)
		if err != nil {
			t.Fatal(err)
		}
		wantNear(t, "activates_at", at, before.Add(time.Hour))
		f.must("", "key", "rotate", "--prepublish", "2h", "--alg", "EdDSA")
		if st := f.keyStatuses("EdDSA"); !slices.Equal(st, []string{"announced"}) {
			t.Errorf("EdDSA line %v", st)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"HS256", []string{"--alg", "HS256"}},
		{"none", []string{"--alg", "none"}},
		{"lower case", []string{"--alg", "es256"}},
		{"negative prepublish", []string{"--prepublish", "-1h"}},
		{"bad duration", []string{"--prepublish", "later"}},
		{"argument", []string{"ES256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.run("", append([]string{"key", "rotate"}, tc.args...)...)
			wantUsageError(t, err)
			if got := f.keys(); len(got) != 0 {
				t.Errorf("a failed rotate added keys %+v", got)
			}
		})
	}
}

// An explicit flag must beat its environment twin.
func TestKeyRotatePrepublishFlagBeatsEnv(t *testing.T) {
	f := newFixture(t)
	t.Setenv("TOKEND_KEY_PREPUBLISH", "1h")
	f.must("", "key", "rotate", "--prepublish", "0s")
	if st := f.keyStatuses("ES256"); !slices.Equal(st, []string{"active"}) {
		t.Errorf("--prepublish 0s gave %v, want an active key", st)
	}
}
