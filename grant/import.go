package grant

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

// Importing users from another system (the "drop-in migration"): an
// Importer is fed one record at a time by a reader of some file format
// (import_read.go), checks each one fully, and writes them in batches of
// one transaction each (tokend.Store's ImportUsers), so that a file of any
// size goes through in constant memory, a bad record never leaves half a
// user behind, and running the same file again changes nothing. The users
// keep their ids (when the source gave them), their password hashes (made
// by bcrypt, PBKDF2, scrypt or argon2: secret.Identify), their roles,
// claims and dates; a foreign hash becomes argon2id at the user's first
// login. The whole run is one audit event.

// What an import does with a user that is already there.
const (
	OnConflictFail   = "fail"   // a rejection
	OnConflictSkip   = "skip"   // left as it is (the default)
	OnConflictUpdate = "update" // overwritten with the record
)

// Bounds of an import.
const (
	DefaultImportBatch = 500
	// MaxImportRejections is how many rejections a summary lists; the
	// rest are only counted.
	MaxImportRejections = 1000
	// MaxImportIDLen bounds an id brought from the source.
	MaxImportIDLen = 128
	// MaxImportHashLen bounds a stored hash (a Keycloak credential is the
	// longest, a few hundred bytes).
	MaxImportHashLen = 4096
)

// ImportOptions say how an import treats what it meets.
type ImportOptions struct {
	// OnConflict is OnConflictFail, OnConflictSkip ("" too) or
	// OnConflictUpdate.
	OnConflict string
	// DryRun checks every record and tells what would happen (from the
	// store as it is now; two records of the file that name the same user
	// are not seen as such), and writes nothing.
	DryRun bool
	// AllowWeakHashes lets unsalted and single-round digests in (MD5,
	// SHA-1: secret.Identify's weak ones); they are rejections otherwise.
	AllowWeakHashes bool
	// BatchSize is how many users one transaction writes; 0:
	// DefaultImportBatch.
	BatchSize int
	// Workers is how many plaintext passwords are hashed at once; 0: one
	// per core.
	Workers int
}

// ImportRecord is one user as a source gives it. A nil field, or an empty
// string, is one the record leaves out: a new user gets the zero value,
// and an update keeps what the stored user has.
type ImportRecord struct {
	// ID, when given, is kept as the user's id: 1 to MaxImportIDLen
	// characters of A-Z a-z 0-9 . _ : @ - (so that ids such as Django's
	// "42" carry over). Without one, the user is matched by username and
	// a new one gets a UUIDv7.
	ID       string
	Username string
	// PasswordHash is a hash in a format secret.Identify knows; Password
	// a plaintext password, hashed here with argon2id. At most one.
	PasswordHash string
	Password     string
	Roles        *[]string
	Claims       *map[string]any
	Disabled     *bool
	CreatedAt    time.Time
	LastLoginAt  time.Time
}

// ImportSummary is what an import did.
// Its JSON is the admin API's answer and `tokend user import --json`.
type ImportSummary struct {
	Imported int `json:"imported"`
	Updated  int `json:"updated"`
	Skipped  int `json:"skipped"`
	Rejected int `json:"rejected"`
	// Rejections are the first MaxImportRejections rejections, by line
	// (Rejected counts them all).
	Rejections []ImportRejection `json:"rejections"`
	DryRun     bool              `json:"dry_run"`
}

// Records is how many records the import has seen.
func (s ImportSummary) Records() int { return s.Imported + s.Updated + s.Skipped + s.Rejected }

// ImportRejection is a record that was not imported, and why. The reason
// names fields, never a value of the record (no hash, no password).
type ImportRejection struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// pending is a checked record waiting for its batch.
type pending struct {
	line     int
	user     tokend.ImportUser
	password string // plaintext to hash before the batch is written
}

// Importer imports users record by record: Add or Reject each record of
// the source, then Finish. It is not safe for concurrent use.
type Importer struct {
	m     *Manager
	opts  ImportOptions
	at    time.Time
	batch []pending
	sum   ImportSummary
	err   error // a failure that ended the import
}

// NewImporter starts an import. EINVALID for options out of range.
func (m *Manager) NewImporter(opts ImportOptions) (*Importer, error) {
	if opts.OnConflict == "" {
		opts.OnConflict = OnConflictSkip
	}
	var errs []tokend.FieldError
	if !slices.Contains([]string{OnConflictFail, OnConflictSkip, OnConflictUpdate}, opts.OnConflict) {
		errs = append(errs, fieldErr("on_conflict", "must be fail, skip or update"))
	}
	if opts.BatchSize < 0 || opts.Workers < 0 {
		errs = append(errs, fieldErr("batch_size", "must not be negative"))
	}
	if err := tokend.Invalid(errs); err != nil {
		return nil, err
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultImportBatch
	}
	if opts.Workers == 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	return &Importer{m: m, opts: opts, at: m.now().UTC().Truncate(time.Microsecond), sum: ImportSummary{DryRun: opts.DryRun}}, nil
}

// Summary returns what the import did so far.
func (im *Importer) Summary() ImportSummary {
	s := im.sum
	s.Rejections = sortedRejections(s.Rejections)
	return s
}

// Records is how many records the import has seen so far (those waiting
// for their batch included).
func (im *Importer) Records() int { return im.sum.Records() + len(im.batch) }

// Reject records that the record at line is not imported, for reason
// (which must not quote the record's hash or password).
func (im *Importer) Reject(line int, reason string) {
	im.sum.Rejected++
	im.sum.Rejections = append(im.sum.Rejections, ImportRejection{Line: line, Reason: reason})
	if len(im.sum.Rejections) >= 2*MaxImportRejections {
		im.sum.Rejections = sortedRejections(im.sum.Rejections)
	}
}

// sortedRejections orders rejections by line and keeps the first
// MaxImportRejections.
func sortedRejections(l []ImportRejection) []ImportRejection {
	l = append([]ImportRejection{}, l...)
	slices.SortStableFunc(l, func(a, b ImportRejection) int { return a.Line - b.Line })
	return l[:min(len(l), MaxImportRejections)]
}

// rejectFields rejects a record for the problems of its fields.
func (im *Importer) rejectFields(line int, errs []tokend.FieldError) {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Field + ": " + e.Detail
	}
	im.Reject(line, strings.Join(msgs, "; "))
}

// Add checks the record at line and queues it, writing the batch once it
// is full; a record with any problem is a rejection instead. An error
// means the store failed: the import is over (Finish still reports it).
func (im *Importer) Add(ctx context.Context, line int, r ImportRecord) error {
	if im.err != nil {
		return im.err
	}
	p, errs := im.check(line, r)
	if len(errs) > 0 {
		im.rejectFields(line, errs)
		return nil
	}
	im.batch = append(im.batch, p)
	if len(im.batch) >= im.opts.BatchSize {
		return im.flush(ctx)
	}
	return nil
}

// ValidImportID reports whether id may be kept as a user's id.
func ValidImportID(id string) bool {
	if id == "" || len(id) > MaxImportIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:@-", c) >= 0) {
			return false
		}
	}
	return true
}

// check validates r and makes the user to import.
func (im *Importer) check(line int, r ImportRecord) (pending, []tokend.FieldError) {
	var errs []tokend.FieldError
	u := tokend.User{Username: r.Username, PasswordHash: r.PasswordHash, CreatedAt: im.at}
	in := tokend.ImportUser{ByID: r.ID != "", Update: im.opts.OnConflict == OnConflictUpdate, At: im.at}
	switch {
	case r.ID == "":
		u.ID = uuid.Must(uuid.NewV7()).String()
	case !ValidImportID(r.ID):
		errs = append(errs, fieldErr("id", "must be 1 to %d characters of A-Z a-z 0-9 . _ : @ -", MaxImportIDLen))
	default:
		u.ID = r.ID
	}
	if r.Username == "" {
		errs = append(errs, fieldErr("username", "is required"))
	} else {
		errs = append(errs, CheckUsername("username", r.Username)...)
	}
	switch {
	case r.Password != "" && r.PasswordHash != "":
		errs = append(errs, fieldErr("password", "give password or password_hash, not both"))
	case r.PasswordHash != "":
		errs = append(errs, im.checkHash(r.PasswordHash)...)
		in.Given |= tokend.ImportPassword
	case r.Password != "":
		errs = append(errs, CheckPassword("password", r.Password)...)
		in.Given |= tokend.ImportPassword
	}
	if r.Roles != nil {
		roles, rerrs := CheckRoles("roles", *r.Roles)
		u.Roles, errs = roles, append(errs, rerrs...)
		in.Given |= tokend.ImportRoles
	}
	if r.Claims != nil {
		errs = append(errs, CheckClaims("claims", *r.Claims)...)
		u.Claims = *r.Claims
		in.Given |= tokend.ImportClaims
	}
	if r.Disabled != nil {
		u.Disabled = *r.Disabled
		in.Given |= tokend.ImportDisabled
	}
	if !r.CreatedAt.IsZero() {
		u.CreatedAt = r.CreatedAt.UTC().Truncate(time.Microsecond)
		in.Given |= tokend.ImportCreatedAt
	}
	if !r.LastLoginAt.IsZero() {
		u.LastLoginAt = r.LastLoginAt.UTC().Truncate(time.Microsecond)
		in.Given |= tokend.ImportLastLoginAt
	}
	in.User = u
	return pending{line: line, user: in, password: r.Password}, errs
}

// checkHash checks a foreign hash: a format tokend can check, well
// formed, and not a weak one unless the import allows those.
func (im *Importer) checkHash(h string) []tokend.FieldError {
	if len(h) > MaxImportHashLen || !utf8.ValidString(h) || strings.ContainsFunc(h, unicode.IsControl) {
		return []tokend.FieldError{fieldErr("password_hash", "is not a password hash (at most %d printable bytes)", MaxImportHashLen)}
	}
	format, weak, err := secret.Identify(h)
	if err != nil {
		return []tokend.FieldError{fieldErr("password_hash", "format not recognised (bcrypt, PBKDF2, scrypt, argon2 and Keycloak credentials are)")}
	}
	if weak && !im.opts.AllowWeakHashes {
		return []tokend.FieldError{fieldErr("password_hash", "is a weak %s hash (no salt, or a single round of a fast digest): refused unless weak hashes are allowed (--allow-weak-hashes)", format)}
	}
	if err := secret.WellFormed(h); err != nil {
		return []tokend.FieldError{fieldErr("password_hash", "%v", err)}
	}
	return nil
}

// flush writes the batch (or, in a dry run, tells what writing it would
// do) and counts the outcomes.
func (im *Importer) flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	batch := im.batch
	im.batch = im.batch[:0]
	var outcomes []tokend.ImportOutcome
	var err error
	if im.opts.DryRun {
		outcomes, err = im.plan(ctx, batch)
	} else {
		if err = im.hashPasswords(batch); err == nil {
			users := make([]tokend.ImportUser, len(batch))
			for i, p := range batch {
				users[i] = p.user
			}
			outcomes, err = im.m.Store.ImportUsers(ctx, users)
		}
	}
	if err != nil {
		im.err = fmt.Errorf("import users (lines %d to %d): %w", batch[0].line, batch[len(batch)-1].line, err)
		return im.err
	}
	changed := false
	for i, o := range outcomes {
		changed = im.count(batch[i], o) || changed
	}
	if changed {
		im.m.changed(ctx)
	}
	return nil
}

// count adds one outcome to the summary and reports whether it changed
// a user.
func (im *Importer) count(p pending, o tokend.ImportOutcome) bool {
	switch o.Result {
	case tokend.ImportCreated:
		im.sum.Imported++
		return true
	case tokend.ImportUpdated:
		im.sum.Updated++
		return true
	case tokend.ImportUnchanged:
		im.sum.Skipped++
	case tokend.ImportExists:
		if im.opts.OnConflict != OnConflictFail {
			im.sum.Skipped++
		} else if p.user.ByID {
			im.Reject(p.line, "id: a user with this id already exists (on conflict: fail)")
		} else {
			im.Reject(p.line, "username: a user with this username already exists (on conflict: fail)")
		}
	case tokend.ImportUsernameTaken:
		im.Reject(p.line, "username: another user already has this username, or has it as id")
	case tokend.ImportIDTaken:
		im.Reject(p.line, "id: is the id of a client app or of one of its end users, or another user's username")
	default:
		im.Reject(p.line, "not imported: "+o.Result)
	}
	return false
}

// hashPasswords hashes the batch's plaintext passwords with argon2id, a
// few at a time (each run holds the parameters' memory).
func (im *Importer) hashPasswords(batch []pending) error {
	var todo []int
	for i := range batch {
		if batch[i].password != "" {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	work := make(chan int)
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	for range min(im.opts.Workers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				batch[i].user.User.PasswordHash, errs[i] = secret.HashPassword(batch[i].password, im.m.Params)
				batch[i].password = ""
			}
		}()
	}
	for _, i := range todo {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("hash password: %w", err)
		}
	}
	return nil
}

// plan tells what ImportUsers would do with a batch, from the store as it
// is now, without writing.
func (im *Importer) plan(ctx context.Context, batch []pending) ([]tokend.ImportOutcome, error) {
	out := make([]tokend.ImportOutcome, len(batch))
	for i, p := range batch {
		in := p.user
		if p.password != "" {
			in.User.PasswordHash = "(a new argon2id hash)" // differs from any stored one
		}
		var st tokend.ImportState
		var err error
		if in.ByID {
			if st.ByID, err = optional(im.m.Store.UserByID(ctx, in.User.ID)); err != nil {
				return nil, err
			}
			c, err := optional(im.m.Store.ClientByID(ctx, in.User.ID))
			if err != nil {
				return nil, err
			}
			st.IDIsClient = c != nil
			if st.IDAsName, err = optional(im.m.Store.UserByName(ctx, in.User.ID)); err != nil {
				return nil, err
			}
		}
		if st.ByName, err = optional(im.m.Store.UserByName(ctx, in.User.Username)); err != nil {
			return nil, err
		}
		if st.NameAsID, err = optional(im.m.Store.UserByID(ctx, in.User.Username)); err != nil {
			return nil, err
		}
		out[i] = in.Plan(st).Outcome
	}
	return out, nil
}

// optional turns ENOTFOUND into nil.
func optional[T any](v *T, err error) (*T, error) {
	if tokend.ErrorCode(err) == tokend.ENOTFOUND {
		return nil, nil
	}
	return v, err
}

// Finish writes what is left and records the import in the audit trail:
// one event, "users.imported", with the counts and the options, whoever
// the actor (none for a dry run, which changes nothing). It returns the
// summary, and the error that ended the import early, if one did (the
// users of the batches written before it stay imported).
func (im *Importer) Finish(ctx context.Context) (ImportSummary, error) {
	if im.err == nil {
		im.flush(ctx)
	}
	sum := im.Summary()
	if im.opts.DryRun {
		return sum, im.err
	}
	outcome := "success"
	detail := fmt.Sprintf("imported=%d updated=%d skipped=%d rejected=%d on_conflict=%s", sum.Imported, sum.Updated, sum.Skipped, sum.Rejected, im.opts.OnConflict)
	if im.opts.AllowWeakHashes {
		detail += " allow_weak_hashes=true"
	}
	if im.err != nil {
		outcome, detail = "failure", detail+" aborted=true"
	}
	err := im.m.Store.AppendAudit(context.WithoutCancel(ctx), []tokend.AuditEvent{{
		At: im.m.now(), Event: "users.imported", Dialect: im.m.Dialect, IP: tokend.ClientIP(ctx),
		Outcome: outcome, Detail: detail, Actor: ActorOf(ctx),
	}})
	if im.err != nil {
		return sum, im.err
	}
	if err != nil {
		return sum, fmt.Errorf("record users.imported: %w", err)
	}
	return sum, nil
}
