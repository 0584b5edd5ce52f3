package adminapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// POST /admin/v1/users:import takes users from another system as JSON
// Lines, the one route whose body may be large: it is read record by
// record as it arrives (never whole), and written in batches as it goes.

// MaxImportBytes caps the body of an import.
const MaxImportBytes = 256 << 20

// importIdle is how long an import waits for more of its body: the
// server's read timeout is lifted for this route, and this bounds instead
// how long a sender may stall.
const importIdle = time.Minute

// importMediaTypes are the types of a JSON Lines body.
var importMediaTypes = []string{"application/x-ndjson", "application/jsonl"}

var (
	errImportTooLarge = &tokend.Error{Code: tokend.EINVALID, Message: "request body larger than the import limit (256 MiB unless configured otherwise): split the import"}
	errNotJSONLines   = &tokend.Error{Code: tokend.EINVALID, Message: "the body must be JSON Lines (Content-Type: application/x-ndjson or application/jsonl)"}
)

func (a *API) importUsers(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r)
	opts := grant.ImportOptions{OnConflict: q.get("on_conflict")}
	if opts.OnConflict != "" && !slices.Contains([]string{grant.OnConflictFail, grant.OnConflictSkip, grant.OnConflictUpdate}, opts.OnConflict) {
		q.bad("on_conflict", "must be fail, skip or update")
	}
	if v := q.boolean("dry_run"); v != nil {
		opts.DryRun = *v
	}
	if v := q.boolean("allow_weak_hashes"); v != nil {
		opts.AllowWeakHashes = *v
	}
	if err := q.err(); err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !slices.Contains(importMediaTypes, mt) {
		return errNotJSONLines
	}
	limit := a.ImportMaxBytes
	if limit <= 0 {
		limit = MaxImportBytes
	}
	if r.ContentLength > limit {
		return errImportTooLarge
	}
	im, err := a.Manager.NewImporter(opts)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	body := &idleBody{r: http.MaxBytesReader(w, r.Body, limit), rc: rc}
	err = grant.ReadJSONL(r.Context(), body, im)
	var re *grant.ReadError
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb) && errors.As(err, &re):
		im.Reject(re.Line, fmt.Sprintf("the body is over the import limit of %d bytes: this line and the rest were not read", limit))
	case errors.As(err, &re):
		im.Reject(re.Line, "the body could not be read to its end: this line and the rest were not imported")
	}
	sum, ferr := im.Finish(r.Context())
	if ferr != nil {
		return ferr
	}
	// The server's write timeout ran from the request's start.
	rc.SetWriteDeadline(time.Now().Add(15 * time.Second))
	return writeJSON(w, http.StatusOK, sum)
}

// idleBody pushes the connection's read deadline on before every read,
// so that a long import is bounded by how long its sender stalls rather
// than by the server's read timeout.
type idleBody struct {
	r  io.Reader
	rc *http.ResponseController
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(importIdle)) // http.ErrNotSupported: no deadline to push
	return b.r.Read(p)
}
