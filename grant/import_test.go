package grant_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/sqlite"
	"github.com/tokend/tokend/tokendtest"
)

// brokenImports is a store whose ImportUsers fails from the n-th call on,
// as a database that goes away in the middle of an import would.
type brokenImports struct {
	tokend.Store
	calls, failFrom int
}

func (s *brokenImports) ImportUsers(ctx context.Context, batch []tokend.ImportUser) ([]tokend.ImportOutcome, error) {
	s.calls++
	if s.calls >= s.failFrom {
		return nil, errors.New("the database went away")
	}
	return s.Store.ImportUsers(ctx, batch)
}

// TestImportBatches: users are written a batch (one transaction) at a
// time, with their plaintext passwords hashed; when the store fails, the
// batches before stay imported, the failing one and the rest are not,
// and the audit event says the import was cut short.
func TestImportBatches(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	store := &brokenImports{Store: st, failFrom: 3}
	m := &grant.Manager{Store: store, Params: tokendtest.Cheap, Dialect: "cli"}
	im, err := m.NewImporter(grant.ImportOptions{BatchSize: 10, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	for i := range 45 {
		fmt.Fprintf(&body, `{"username": "u%02d", "password": "pw-%02d"}`+"\n", i, i)
	}
	ctx := grant.WithActor(context.Background(), "cli")
	err = grant.ReadJSONL(ctx, strings.NewReader(body.String()), im)
	if err == nil || !strings.Contains(err.Error(), "lines 21 to 30") {
		t.Fatalf("read: %v", err)
	}
	sum, ferr := im.Finish(ctx)
	if ferr == nil || sum.Imported != 20 || sum.Rejected != 0 {
		t.Fatalf("finish: %v %+v", ferr, sum)
	}
	for i := range 45 {
		u, err := st.UserByName(ctx, fmt.Sprintf("u%02d", i))
		switch {
		case i < 20 && err != nil:
			t.Errorf("u%02d of a written batch: %v", i, err)
		case i < 20 && !strings.HasPrefix(u.PasswordHash, "$argon2id$"):
			t.Errorf("u%02d: hash %.10q", i, u.PasswordHash)
		case i >= 20 && tokend.ErrorCode(err) != tokend.ENOTFOUND:
			t.Errorf("u%02d of a failed batch: %v", i, err)
		}
	}
	events, err := st.ListAudit(ctx, tokend.AuditFilter{})
	if err != nil || len(events) != 1 || events[0].Event != "users.imported" || events[0].Outcome != "failure" || events[0].Actor != "cli" ||
		events[0].Detail != "imported=20 updated=0 skipped=0 rejected=0 on_conflict=skip aborted=true" {
		t.Errorf("audit: %v %+v", err, events)
	}
	if _, err := m.NewImporter(grant.ImportOptions{OnConflict: "merge"}); tokend.ErrorCode(err) != tokend.EINVALID {
		t.Errorf("on_conflict merge: %v", err)
	}
}
