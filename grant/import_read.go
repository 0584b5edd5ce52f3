package grant

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// Readers of the import formats: JSON Lines (one object per line) and CSV
// with a header row. Each reads its source record by record and hands
// every record to an Importer (or rejects it, with its line number), so
// that memory stays the same for any size of file.

// Import formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// MaxImportLineBytes bounds one record of a source (a line of JSON Lines,
// a row of CSV): far more than the largest valid record needs.
const MaxImportLineBytes = 64 << 10

// ImportColumns are the fields of a record, as JSON names them and as a
// CSV header names its columns.
var ImportColumns = []string{"id", "username", "password_hash", "password", "roles", "claims", "disabled", "created_at", "last_login_at"}

// ReadError is a source that could not be read to its end: the records
// before Line were handed over, the rest were not.
type ReadError struct {
	Line int
	Err  error
}

func (e *ReadError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *ReadError) Unwrap() error { return e.Err }

// ReadJSONL feeds im the records of a JSON Lines source: one JSON object
// per line (ImportColumns; a field that is null is left out), blank lines
// ignored. A line that is not such an object, or that names an unknown
// field or a field twice, is a rejection. It returns the Importer's error,
// or a *ReadError when r fails.
func ReadJSONL(ctx context.Context, r io.Reader, im *Importer) error {
	br := bufio.NewReaderSize(r, MaxImportLineBytes)
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return &ReadError{Line: line, Err: err}
			}
			im.Reject(line, fmt.Sprintf("the line is longer than %d KiB", MaxImportLineBytes>>10))
			if err == io.EOF {
				return nil
			}
			continue
		}
		if err != nil && err != io.EOF {
			return &ReadError{Line: line, Err: err}
		}
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff"))
		}
		if len(bytes.TrimSpace(b)) > 0 {
			rec, problems := parseJSONRecord(b)
			if aerr := im.addOrReject(ctx, line, rec, problems); aerr != nil {
				return aerr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// addOrReject adds rec, or rejects it for its problems.
func (im *Importer) addOrReject(ctx context.Context, line int, rec ImportRecord, problems []tokend.FieldError) error {
	if len(problems) > 0 {
		im.rejectFields(line, problems)
		return nil
	}
	return im.Add(ctx, line, rec)
}

// errRecord is a problem with the whole record rather than a field.
func errRecord(detail string) []tokend.FieldError {
	return []tokend.FieldError{{Field: "record", Detail: detail}}
}

// parseJSONRecord reads one JSON object strictly: no unknown field, no
// field twice, each of its type.
func parseJSONRecord(b []byte) (ImportRecord, []tokend.FieldError) {
	var rec ImportRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil {
		return rec, errRecord("malformed JSON")
	} else if tok != json.Delim('{') {
		return rec, errRecord("must be a JSON object")
	}
	fields := map[string]json.RawMessage{}
	var problems []tokend.FieldError
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return rec, errRecord("malformed JSON")
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return rec, errRecord("malformed JSON")
		}
		switch {
		case !slices.Contains(ImportColumns, key):
			problems = append(problems, tokend.FieldError{Field: fieldName(key), Detail: "unknown field"})
		case fields[key] != nil:
			problems = append(problems, tokend.FieldError{Field: key, Detail: "given more than once"})
		default:
			fields[key] = v
		}
	}
	if _, err := dec.Token(); err != nil {
		return rec, errRecord("malformed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return rec, errRecord("malformed JSON: more after the object")
	}
	for _, key := range ImportColumns {
		v, ok := fields[key]
		if !ok || bytes.Equal(v, []byte("null")) {
			continue
		}
		if err := setJSONField(&rec, key, v); err != "" {
			problems = append(problems, tokend.FieldError{Field: key, Detail: err})
		}
	}
	return rec, problems
}

// fieldName names an unknown field in a rejection, unless it could be
// anything but a name (it might then be a misplaced value).
func fieldName(s string) string {
	if len(s) > 40 || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}) {
		return "(a field)"
	}
	return s
}

// setJSONField sets one field of rec from its JSON value; it returns
// what is wrong with the value, or "".
func setJSONField(rec *ImportRecord, key string, v json.RawMessage) string {
	str := func(dst *string) string {
		if json.Unmarshal(v, dst) != nil {
			return "must be a string"
		}
		return ""
	}
	switch key {
	case "id":
		// An integer is taken as its decimal digits (Django's ids are).
		var n json.Number
		if json.Unmarshal(v, &n) == nil {
			if _, err := n.Int64(); err != nil || strings.HasPrefix(n.String(), "-") {
				return "must be a string, or a whole number"
			}
			rec.ID = n.String()
			return ""
		}
		return str(&rec.ID)
	case "username":
		return str(&rec.Username)
	case "password_hash":
		return str(&rec.PasswordHash)
	case "password":
		return str(&rec.Password)
	case "roles":
		var l []string
		if json.Unmarshal(v, &l) != nil {
			return "must be an array of strings"
		}
		rec.Roles = &l
	case "claims":
		m, err := tokend.DecodeClaims(v)
		if err != nil || !bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) {
			return "must be a JSON object"
		}
		rec.Claims = &m
	case "disabled":
		var d bool
		if json.Unmarshal(v, &d) != nil {
			return "must be true or false"
		}
		rec.Disabled = &d
	case "created_at", "last_login_at":
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "must be an RFC 3339 time (2024-01-02T15:04:05Z)"
		}
		return setTime(rec, key, s)
	}
	return ""
}

func setTime(rec *ImportRecord, key, s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "must be an RFC 3339 time (2024-01-02T15:04:05Z)"
	}
	if key == "created_at" {
		rec.CreatedAt = t
	} else {
		rec.LastLoginAt = t
	}
	return ""
}

// ReadCSV feeds im the records of a CSV source whose first row names its
// columns (ImportColumns, in any order; username is required). In a cell,
// roles are separated by spaces, claims are a JSON object, disabled is
// true or false; an empty cell of id, password_hash, password or a time is
// left out. A header that names an unknown column is an EINVALID error
// before any record is read; a row that cannot be parsed is a rejection.
func ReadCSV(ctx context.Context, r io.Reader, im *Importer) error {
	guard := &rowGuard{r: r}
	cr := csv.NewReader(guard)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if err == io.EOF {
			return tokend.Errorf(tokend.EINVALID, "the CSV file is empty: it needs a header row naming its columns")
		}
		return &ReadError{Line: 1, Err: err}
	}
	cols, err := csvColumns(header)
	if err != nil {
		return err
	}
	line := 1 // of the last row read
	for {
		guard.n = 0
		row, err := cr.Read()
		var pe *csv.ParseError
		switch {
		case err == io.EOF:
			return nil
		case errors.As(err, &pe) && pe.Err == csv.ErrFieldCount:
			im.Reject(pe.StartLine, fmt.Sprintf("has %d cells, the header %d", len(row), len(cols)))
			continue
		case errors.As(err, &pe):
			im.Reject(pe.StartLine, "malformed CSV: "+pe.Err.Error())
			continue
		case err != nil:
			return &ReadError{Line: line + 1, Err: err}
		}
		line, _ = cr.FieldPos(0)
		rec, problems := csvRecord(cols, row)
		if err := im.addOrReject(ctx, line, rec, problems); err != nil {
			return err
		}
	}
}

// csvColumns checks a header row.
func csvColumns(header []string) ([]string, error) {
	cols := make([]string, len(header))
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch {
		case !slices.Contains(ImportColumns, h):
			return nil, tokend.Errorf(tokend.EINVALID, "CSV header: unknown column %q (known: %s)", fieldName(h), strings.Join(ImportColumns, ", "))
		case slices.Contains(cols, h):
			return nil, tokend.Errorf(tokend.EINVALID, "CSV header: column %q given twice", h)
		}
		cols[i] = h
	}
	if !slices.Contains(cols, "username") {
		return nil, tokend.Errorf(tokend.EINVALID, "CSV header: no username column")
	}
	return cols, nil
}

// csvRecord reads one row.
func csvRecord(cols, row []string) (ImportRecord, []tokend.FieldError) {
	var rec ImportRecord
	var problems []tokend.FieldError
	for i, col := range cols {
		cell := row[i]
		detail := ""
		switch col {
		case "id":
			rec.ID = cell
		case "username":
			rec.Username = cell
		case "password_hash":
			rec.PasswordHash = cell
		case "password":
			rec.Password = cell
		case "roles":
			roles := strings.Fields(cell)
			rec.Roles = &roles
		case "claims":
			m := map[string]any{}
			if strings.TrimSpace(cell) != "" {
				var err error
				if m, err = tokend.DecodeClaims([]byte(cell)); err != nil || !strings.HasPrefix(strings.TrimSpace(cell), "{") {
					detail = "must be a JSON object"
				}
			}
			rec.Claims = &m
		case "disabled":
			var d bool
			switch strings.ToLower(strings.TrimSpace(cell)) {
			case "", "false", "0":
			case "true", "1":
				d = true
			default:
				detail = "must be true or false"
			}
			rec.Disabled = &d
		case "created_at", "last_login_at":
			if cell != "" {
				detail = setTime(&rec, col, cell)
			}
		}
		if detail != "" {
			problems = append(problems, tokend.FieldError{Field: col, Detail: detail})
		}
	}
	return rec, problems
}

// rowGuard fails a CSV reader that reads more than MaxImportLineBytes
// (and its read-ahead) for one row, so that a quote never closed cannot
// make a row of the whole file.
type rowGuard struct {
	r io.Reader
	n int
}

var errRowTooLong = fmt.Errorf("a CSV row longer than %d KiB (a quote never closed?)", MaxImportLineBytes>>10)

func (g *rowGuard) Read(p []byte) (int, error) {
	if g.n > MaxImportLineBytes+64<<10 {
		return 0, errRowTooLong
	}
	n, err := g.r.Read(p)
	g.n += n
	return n, err
}
