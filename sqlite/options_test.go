package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// TestSynchronous: the writing connection runs with the synchronous setting
// asked for (SQLite: 1 is NORMAL, 2 is FULL); NORMAL when none is.
func TestSynchronous(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want int
	}{
		{"default", nil, 1},
		{"normal", []Option{Synchronous("normal")}, 1},
		{"full", []Option{Synchronous("full")}, 2},
		{"FULL", []Option{Synchronous("FULL")}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got int
			if err := s.w.QueryRowContext(context.Background(), `PRAGMA synchronous`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("synchronous = %d, want %d", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "off", "extra", "fulll"} {
		if ParseSynchronous(bad) == nil {
			t.Errorf("ParseSynchronous(%q) accepted it", bad)
		}
	}
}
