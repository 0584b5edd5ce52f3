package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime/debug"
	"time"
)

// The ceiling runs in a process of its own, as tokend does, so that both
// pay the same for crossing between the load generator's process and the
// server's: with the ceiling inside the load generator, a server that does
// almost nothing (the JWKS) would look several times cheaper than any
// server on its own could be. The child is this binary with ceilingChildArg.

const ceilingChildArg = "-ceiling-child"

// ceilingSpec is what the parent sends the child on its standard input.
type ceilingSpec struct {
	Kind   ceilingKind `json:"kind"`
	Sample []byte      `json:"sample"`
	Header http.Header `json:"header"`
	// Auth is the Authorization header the scenario's requests carry: the
	// ceiling checks the client credentials in it, as tokend does.
	Auth string `json:"auth,omitempty"`
	// Addr is where to listen (127.0.0.1:0 if empty).
	Addr string `json:"addr,omitempty"`
	// GCFloorMiB is the heap the ceiling's process may grow to before its
	// collector runs (ceilingGCFloor).
	GCFloorMiB int `json:"gc_floor_mib,omitempty"`
}

// ceilingGCFloor gives the ceiling's process the heap floor that tokend
// serve has by default (--gc-floor 64): without it the ceiling, whose live
// heap is a few hundred KiB, would collect every few milliseconds under
// load, and tokend would measure faster than its own ceiling. The
// ceiling's live heap never grows, so a fixed GOGC does what tokend's
// floor does: Go's smallest heap goal (4 MiB at GOGC=100) scales with
// GOGC. GOGC set in the environment wins.
func ceilingGCFloor(mib int) {
	if mib <= 0 || os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(max(100, mib*100/4))
}

// ceilingInfo is what the child answers, one JSON line on standard output.
type ceilingInfo struct {
	URL        string         `json:"url"`
	Token      string         `json:"token"`
	TokenBytes map[string]int `json:"token_bytes"`
	Describe   string         `json:"describe"`
	Error      string         `json:"error,omitempty"`
}

// startCeilingProcess starts the ceiling server in a child process; close
// stops it.
func startCeilingProcess(spec ceilingSpec) (*ceiling, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	cmd := exec.Command(self, ceilingChildArg)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	stop := func() {
		in.Close() // the child exits when its standard input ends
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	if err := json.NewEncoder(in).Encode(spec); err != nil {
		stop()
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	var info ceilingInfo
	if err == nil {
		err = json.Unmarshal(line, &info)
	}
	if err != nil || info.Error != "" {
		stop()
		if info.Error != "" {
			return nil, fmt.Errorf("%s", info.Error)
		}
		return nil, fmt.Errorf("ceiling: the child did not start: %v", err)
	}
	return &ceiling{url: info.URL, token: info.Token, tokenBytes: info.TokenBytes, describe: info.Describe, stop: stop}, nil
}

// ceilingChild is the child's main: it reads a ceilingSpec, starts the
// server, answers with a ceilingInfo, and serves until its standard input ends.
func ceilingChild(stdin io.Reader, stdout io.Writer) error {
	var spec ceilingSpec
	if err := json.NewDecoder(stdin).Decode(&spec); err != nil {
		return fmt.Errorf("ceiling child: %w", err)
	}
	ceilingGCFloor(spec.GCFloorMiB)
	c, err := startCeiling(spec)
	if err != nil {
		return json.NewEncoder(stdout).Encode(ceilingInfo{Error: err.Error()})
	}
	defer c.close()
	if err := json.NewEncoder(stdout).Encode(ceilingInfo{URL: c.url, Token: c.token, TokenBytes: c.tokenBytes, Describe: c.describe}); err != nil {
		return err
	}
	io.Copy(io.Discard, stdin)
	return nil
}

// serveCeiling serves the ceiling of cfg's one scenario on cfg.serveCeiling
// until ctx ends, so that any load generator (wrk) can measure it beside
// tokend: it sets the scenario up against tokend as a measurement would,
// starts the ceiling like tokend's answer, and prints one JSON line: the
// ceiling's URL, the token its introspection knows (for that scenario)
// and what it does.
func serveCeiling(ctx context.Context, cfg *config, stdout io.Writer) error {
	s := cfg.list[0]
	t := newTarget(cfg.base, 1, cfg.timeout)
	defer t.close()
	p, err := s.prepare(ctx, t, cfg.creds, 1)
	if err != nil {
		return fmt.Errorf("set up %s against %s: %w", s.name, cfg.base, err)
	}
	ceilingGCFloor(cfg.ceilingGCFloor)
	c, err := startCeiling(ceilingSpec{Kind: s.ceiling, Sample: p.sample, Header: p.sampleHeader, Auth: p.req.auth, Addr: cfg.serveCeiling})
	if err != nil {
		return err
	}
	defer c.close()
	if err := json.NewEncoder(stdout).Encode(ceilingInfo{URL: c.url, Token: c.token, TokenBytes: c.tokenBytes, Describe: c.describe}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
