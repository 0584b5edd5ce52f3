package tokendtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
)

// maxCapture bounds the bytes of a request or response body kept for the
// check.
const maxCapture = 4 << 20

// CheckHandler wraps a tokend handler so that every exchange it serves is
// checked against the contract; a violation fails t. tokendtest.New puts
// it in front of every test server: a test that builds its own server
// wraps the handler with it.
func CheckHandler(t testing.TB, h http.Handler) http.Handler {
	c, err := LoadContract()
	if err != nil {
		t.Fatal(err)
	}
	report := t.Error
	if _, ok := t.(*testing.F); ok {
		// In a fuzz target only its *testing.T may fail: a panic fails the
		// input at hand, with the violation as the message.
		report = func(args ...any) { panic(fmt.Sprint(args...)) }
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqBody := &capture{}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &teeBody{ReadCloser: r.Body, c: reqBody}
		}
		rec := &recordingWriter{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		x := &Exchange{Request: r, RequestBody: reqBody.buf.Bytes(), RequestBodyCut: reqBody.cut,
			Status: rec.status, Header: rec.header, Body: rec.body.buf.Bytes()}
		if rec.header == nil { // nothing written: net/http sends 200
			x.Status, x.Header = http.StatusOK, w.Header().Clone()
		}
		if rec.body.cut || (rec.header == nil && r.Context().Err() != nil) {
			// Cut short, or the client left before any answer (a long
			// poll at shutdown): nothing reached anyone to check.
			return
		}
		if err := c.Check(x); err != nil {
			report(err)
		}
	})
}

// CheckTransport returns a RoundTripper that sends requests with next (nil:
// http.DefaultTransport) and checks every exchange against the contract,
// handing each violation to report. For clients of a tokend that runs out
// of process.
func CheckTransport(next http.RoundTripper, report func(error)) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &checkingTransport{next: next, report: report}
}

type checkingTransport struct {
	next   http.RoundTripper
	report func(error)
}

func (t *checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, err := LoadContract()
	if err != nil {
		t.report(err)
		return t.next.RoundTrip(req)
	}
	// The body sent: from GetBody when the request has it (then a retry
	// of the transport cannot garble the copy), else copied as it is read.
	sent := req
	reqBody := &capture{}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		sent = req.Clone(req.Context())
		sent.Body = &teeBody{ReadCloser: req.Body, c: reqBody}
	}
	resp, err := t.next.RoundTrip(sent)
	if err != nil {
		return resp, err
	}
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			io.Copy(reqBody, rc)
			rc.Close()
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCapture+1))
	rest := resp.Body
	resp.Body = readCloser{Reader: io.MultiReader(bytes.NewReader(body), rest), Closer: rest}
	if err != nil || len(body) > maxCapture {
		return resp, nil // the test sees what the server sent; too big or broken to check
	}
	x := &Exchange{Request: req, RequestBody: reqBody.buf.Bytes(), RequestBodyCut: reqBody.cut,
		Status: resp.StatusCode, Header: resp.Header, Body: body}
	if err := c.Check(x); err != nil {
		t.report(err)
	}
	return resp, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// capture keeps the first maxCapture bytes that pass through it.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
	cut bool
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := maxCapture - c.buf.Len(); len(p) > room {
		c.cut = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}

// teeBody copies what is read of a request body into c.
type teeBody struct {
	io.ReadCloser
	c *capture
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.Write(p[:n])
	return n, err
}

// recordingWriter keeps the status, the header as sent and the body of a
// response.
type recordingWriter struct {
	http.ResponseWriter
	status int
	header http.Header
	body   capture
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.header == nil && code >= 200 {
		w.status, w.header = code, w.ResponseWriter.Header().Clone()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if w.header == nil {
		// net/http sniffs the type of a body written without one.
		if h := w.ResponseWriter.Header(); h.Get("Content-Type") == "" && len(b) > 0 {
			h.Set("Content-Type", http.DetectContentType(b))
		}
		w.WriteHeader(http.StatusOK)
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
