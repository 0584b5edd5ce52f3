package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
)

// progress reports long work. On a terminal it redraws one status line
// (at most a few times a second) and ends with the summary; anywhere else
// (a pipe, a file, cron) it prints the summary line alone, so that logs
// hold one line per run.
type progress struct {
	status  io.Writer // where the status line goes: stderr
	summary io.Writer // where the summary goes: stdout
	tty     bool
	last    time.Time
	drawn   bool
}

// newProgress draws on status when it is a terminal.
func newProgress(status, summary io.Writer) *progress {
	return &progress{status: status, summary: summary, tty: isTerminal(status)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// update redraws the status line, unless it was drawn a moment ago.
func (p *progress) update(format string, args ...any) {
	if !p.tty || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.drawn = true
	fmt.Fprintf(p.status, "\r\033[K"+format, args...)
}

// step always draws the status line: a new stage of the work.
func (p *progress) step(format string, args ...any) {
	p.last = time.Time{}
	p.update(format, args...)
}

// clear removes the status line, if one was drawn.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.status, "\r\033[K")
		p.drawn = false
	}
}

// done clears the status line and prints the summary.
func (p *progress) done(format string, args ...any) {
	p.clear()
	fmt.Fprintf(p.summary, format+"\n", args...)
}

// bytesText shows a byte count for people.
func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
