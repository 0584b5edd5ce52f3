package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/tokend/tokend/tokendtest"
)

// contractViolations collects what the checked clients of these tests find
// in the answers of the tokend binaries they run: every exchange is checked
// against the OpenAPI document (tokendtest.CheckTransport).
var contractViolations struct {
	sync.Mutex
	errs []error
}

func reportViolation(err error) {
	contractViolations.Lock()
	contractViolations.errs = append(contractViolations.errs, err)
	contractViolations.Unlock()
}

// checked wraps a client transport so that its exchanges are checked.
func checked(rt http.RoundTripper) http.RoundTripper {
	return tokendtest.CheckTransport(rt, reportViolation)
}

// TestMain checks the exchanges of http.Get, http.DefaultClient and the
// tests' own clients against the OpenAPI document, and fails the run if
// any departed from it (the server is another process, so a violation
// cannot be pinned on the test that caused it; the message names the
// request).
func TestMain(m *testing.M) {
	http.DefaultTransport = checked(http.DefaultTransport)
	code := m.Run()
	contractViolations.Lock()
	defer contractViolations.Unlock()
	if n := len(contractViolations.errs); n > 0 {
		for _, err := range contractViolations.errs {
			fmt.Fprintln(os.Stderr, err)
		}
		fmt.Fprintf(os.Stderr, "FAIL: %d answers of the tokend binary departed from the OpenAPI document\n", n)
		code = 1
	}
	os.Exit(code)
}

// TestOpenAPICoversEveryRoute fails when `tokend serve` (with its default
// flags: every dialect on) registers a route that the OpenAPI document does
// not describe, or the document describes one that is not served.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.flags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	e := tokendtest.New(t, tokendtest.Options{})
	patterns := c.api(e.Engine, e.Store, e.Metrics, e.Log).Patterns()
	contract, err := tokendtest.LoadContract()
	if err != nil {
		t.Fatal(err)
	}
	undocumented, unserved := contract.Coverage(patterns)
	for _, p := range undocumented {
		t.Errorf("route %q is served but not in httpapi/openapi.json", p)
	}
	// The admin API is described before it is mounted: until a pattern
	// of it is registered, its operations are not required.
	admin := false
	for _, p := range patterns {
		admin = admin || strings.Contains(p, "/admin/v1/")
	}
	for _, op := range unserved {
		if !admin && strings.Contains(op, " /admin/v1/") {
			t.Logf("not served yet: %s", op)
			continue
		}
		t.Errorf("%s is in httpapi/openapi.json but not served", op)
	}
	if len(patterns) < 30 {
		t.Fatalf("only %d patterns registered: %v", len(patterns), patterns)
	}
}
