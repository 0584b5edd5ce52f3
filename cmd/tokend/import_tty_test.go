//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a pseudo-terminal: what the command writes to tty, the
// test reads from pt.
func openPTY(t *testing.T) (pt, tty *os.File) {
	t.Helper()
	pt, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { pt.Close() })
	var unlock int32
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, pt.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Skipf("unlock pseudo-terminal: %v", e)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, pt.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Skipf("pseudo-terminal number: %v", e)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pseudo-terminal: %v", err)
	}
	return pt, tty
}

// TestImportProgressOnTerminal: on a terminal, `user import` draws a
// status line (records, rate, how far through the file and the time
// left), then clears it for the summary.
func TestImportProgressOnTerminal(t *testing.T) {
	f := newFixture(t)
	var lines []string
	for i := range 2000 {
		lines = append(lines, fmt.Sprintf(`{"username": "tty-%04d"}`, i))
	}
	file := writeLines(t, t.TempDir(), "users.jsonl", lines...)
	pt, tty := openPTY(t)
	drawn := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, pt) // until the terminal's last holder closes it
		drawn <- b.String()
	}()
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"user", "import", file, "--db", f.db()}, strings.NewReader(""), &stdout, tty)
	tty.Close()
	if err != nil {
		t.Fatal(err)
	}
	status := <-drawn
	if !strings.Contains(status, "\r\033[Kimporting "+file+": ") || !strings.Contains(status, "/s, ") || !strings.Contains(status, "%, ETA ") {
		t.Errorf("status line %q", status)
	}
	if !strings.HasSuffix(status, "\r\033[K") {
		t.Errorf("the status line was not cleared: %q", status)
	}
	if !strings.Contains(stdout.String(), ": 2000 imported") || strings.Contains(stdout.String(), "\r") {
		t.Errorf("summary %q", stdout.String())
	}
}
