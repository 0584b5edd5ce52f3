package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestProgress: on a terminal, a status line redrawn in place, then the
// summary; elsewhere, the summary line alone.
func TestProgress(t *testing.T) {
	for _, tty := range []bool{true, false} {
		var status, summary bytes.Buffer
		p := &progress{status: &status, summary: &summary, tty: tty}
		p.step("backing up: %d%%", 10)
		p.update("backing up: %d%%", 20) // too soon after the last: skipped
		p.step("verifying")
		p.done("backup: wrote %s", "x.db")
		if summary.String() != "backup: wrote x.db\n" {
			t.Errorf("tty %v: summary %q", tty, summary.String())
		}
		want := ""
		if tty {
			want = "\r\033[Kbacking up: 10%\r\033[Kverifying\r\033[K"
		}
		if status.String() != want {
			t.Errorf("tty %v: status %q, want %q", tty, status.String(), want)
		}
	}
	// A pipe is not a terminal: the binary tests see one summary line.
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
}

func TestServeSQLiteSynchronousFlag(t *testing.T) {
	hermeticEnv(t)
	_, _, err := runCLI(t, "", "serve", "--sqlite-synchronous", "off", "--db", "sqlite:"+t.TempDir()+"/x.db")
	if ue := wantUsageError(t, err); !strings.Contains(ue.msg, "--sqlite-synchronous") {
		t.Errorf("message %q", ue.msg)
	}
}
