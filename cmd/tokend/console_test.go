package main

import (
	"net/url"
	"strings"
	"testing"
)

// TestConsoleSwitch: tokend serve serves the web console, and on a new
// store logs its one-time setup link, unless --console=false: then every
// /console/ path is a 404 and no link is logged. `tokend user add NAME
// --role tokend.admin` makes the link unneeded.
func TestConsoleSwitch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	dir := t.TempDir()
	on := startServer(t, dir)
	if r := on.get("/console/signin"); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET /console/signin: %d %v", r.status, r.header)
	}
	if !strings.Contains(on.Logs(), "setup_url=") {
		t.Fatalf("no setup link logged on a new store: %s", on.Logs())
	}
	on.stop(t)
	on.cli(t, "s3cret-pass\n", "user", "add", "root", "--role", "tokend.admin", "--password-stdin")
	again := startServer(t, dir)
	if strings.Contains(again.Logs(), "setup_url=") {
		t.Fatalf("a setup link was logged although an administrator exists: %s", again.Logs())
	}
	again.stop(t)

	off := startServer(t, t.TempDir(), "--console=false")
	for _, path := range []string{"/console", "/console/", "/console/signin", "/console/setup?token=x", "/console/static/console.css", "/console/users"} {
		if r := off.get(path); r.status != 404 {
			t.Errorf("--console=false: GET %s: %d", path, r.status)
		}
	}
	if r := off.post("/console/signin", url.Values{"username": {"root"}, "password": {"x"}}, "", ""); r.status != 404 {
		t.Errorf("--console=false: POST /console/signin: %d", r.status)
	}
	if strings.Contains(off.Logs(), "setup_url=") {
		t.Errorf("--console=false logged a setup link: %s", off.Logs())
	}
	if r := off.get("/healthz"); r.status != 200 {
		t.Errorf("the rest still serves: %d", r.status)
	}
}
