package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
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
func startCeilingProcess(kind ceilingKind, sample []byte, header http.Header) (*ceiling, error) {
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
	if err := json.NewEncoder(in).Encode(ceilingSpec{Kind: kind, Sample: sample, Header: header}); err != nil {
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
	c, err := startCeiling(spec.Kind, spec.Sample, spec.Header)
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
