package secret

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Password hashes made elsewhere, so that users can be brought over with
// their passwords and log in from the first request: each is checked
// exactly as its origin computes it, and replaced by an argon2id hash at the
// first successful login (NeedsRehash).
//
// Formats (Identify's names):
//   - argon2id, argon2i: PHC strings ($argon2id$v=19$m=..,t=..,p=..$salt$hash)
//   - bcrypt: $2a$, $2b$, $2y$ (Supabase Auth, Auth0, Rails, Laravel)
//   - django-pbkdf2-sha256, django-pbkdf2-sha1: pbkdf2_sha256$iterations$salt$hash
//   - django-argon2: argon2$argon2id$v=19$...
//   - django-bcrypt-sha256, django-bcrypt: bcrypt_sha256$$2b$..., bcrypt$$2b$...
//   - keycloak: the credential JSON of a Keycloak realm export
//   - scrypt: PHC $scrypt$ln=..,r=..,p=..$salt$hash (passlib)
//   - werkzeug-pbkdf2, werkzeug-scrypt: pbkdf2:sha256:N$salt$hex, scrypt:N:r:p$salt$hex
//   - weak (accepted only when an import allows it): Django's md5, sha1,
//     unsalted_md5 and unsalted_sha1, and bare hex MD5 or SHA-1 digests.

// ErrUnknownFormat is returned for a hash whose format is not recognised.
var ErrUnknownFormat = errors.New("password hash format not recognised")

// Bounds on the work a stored hash may ask for, so that one imported hash
// cannot make a login take minutes or exhaust memory.
const (
	maxIterations   = 10_000_000
	maxBcryptCost   = 16
	maxScryptMemory = 1 << 30 // bytes: 128 * N * r
	maxArgonMemory  = 4 << 20 // KiB
)

// foreign is one stored-hash format: how to recognise it and check it.
type foreign struct {
	name  string
	weak  bool
	match func(h string) bool
	check func(password, h string) (bool, error)
}

var formats = []foreign{
	{name: "argon2id", match: prefix("$argon2id$"), check: CheckArgon2},
	{name: "argon2i", match: prefix("$argon2i$"), check: CheckArgon2},
	{name: "bcrypt", match: isBcrypt, check: checkBcrypt},
	{name: "django-pbkdf2-sha256", match: prefix("pbkdf2_sha256$"), check: djangoPBKDF2(sha256.New)},
	{name: "django-pbkdf2-sha1", match: prefix("pbkdf2_sha1$"), check: djangoPBKDF2(sha1.New)},
	{name: "django-argon2", match: prefix("argon2$argon2"), check: func(pw, h string) (bool, error) { return CheckArgon2(pw, strings.TrimPrefix(h, "argon2")) }},
	{name: "django-bcrypt-sha256", match: prefix("bcrypt_sha256$"), check: djangoBcryptSHA256},
	{name: "django-bcrypt", match: prefix("bcrypt$"), check: func(pw, h string) (bool, error) { return checkBcrypt(pw, strings.TrimPrefix(h, "bcrypt$")) }},
	{name: "keycloak", match: prefix("{"), check: checkKeycloak},
	{name: "scrypt", match: prefix("$scrypt$"), check: checkPHCScrypt},
	{name: "werkzeug-pbkdf2", match: prefix("pbkdf2:"), check: checkWerkzeugPBKDF2},
	{name: "werkzeug-scrypt", match: prefix("scrypt:"), check: checkWerkzeugScrypt},
	{name: "django-md5", weak: true, match: prefix("md5$"), check: saltedDigest(md5.New)},
	{name: "django-sha1", weak: true, match: prefix("sha1$"), check: saltedDigest(sha1.New)},
	{name: "django-unsalted-md5", weak: true, match: prefix("unsalted_md5$$"), check: unsaltedDigest(md5.New, "unsalted_md5$$")},
	{name: "django-unsalted-sha1", weak: true, match: prefix("unsalted_sha1$$"), check: unsaltedDigest(sha1.New, "unsalted_sha1$$")},
	{name: "md5", weak: true, match: hexOf(md5.Size), check: unsaltedDigest(md5.New, "")},
	{name: "sha1", weak: true, match: hexOf(sha1.Size), check: unsaltedDigest(sha1.New, "")},
}

func prefix(p string) func(string) bool {
	return func(h string) bool { return strings.HasPrefix(h, p) }
}

func hexOf(n int) func(string) bool {
	return func(h string) bool {
		b, err := hex.DecodeString(h)
		return err == nil && len(b) == n
	}
}

func lookup(hash string) (*foreign, error) {
	for i := range formats {
		if formats[i].match(hash) {
			return &formats[i], nil
		}
	}
	return nil, ErrUnknownFormat
}

// Identify names the format of a stored hash and tells whether it is a
// weak one (an unsalted or single-round digest). ErrUnknownFormat if it is
// none that tokend can check.
func Identify(hash string) (format string, weak bool, err error) {
	f, err := lookup(hash)
	if err != nil {
		return "", false, err
	}
	return f.name, f.weak, nil
}

// CheckPassword reports whether password matches hash, in any format
// Identify knows, in time that does not depend on where the two differ.
// An error means the hash itself is unusable.
func CheckPassword(password, hash string) (bool, error) {
	f, err := lookup(hash)
	if err != nil {
		return false, fmt.Errorf("check password: %w", err)
	}
	ok, err := f.check(password, hash)
	if err != nil {
		return false, fmt.Errorf("check password (%s): %w", f.name, err)
	}
	return ok, nil
}

// NeedsRehash reports whether hash should be replaced by a new argon2id
// hash with parameters p once the password is known: any foreign format,
// and argon2id with weaker parameters than p.
func NeedsRehash(hash string, p Params) bool {
	got, _, _, err := parseArgon2(hash)
	if err != nil || got.variant != "argon2id" {
		return true
	}
	return got.MemoryKiB < p.MemoryKiB || got.Time < p.Time || got.Threads < p.Threads
}

func equal(a, b []byte) bool { return len(b) > 0 && subtle.ConstantTimeCompare(a, b) == 1 }

// bcrypt: x/crypto's bcrypt reads at most 72 bytes of the password, as
// every other implementation does.

func isBcrypt(h string) bool {
	return len(h) == 60 && (strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$"))
}

func checkBcrypt(password, h string) (bool, error) {
	if !isBcrypt(h) {
		return false, errors.New("malformed bcrypt hash")
	}
	cost, err := bcrypt.Cost([]byte(h))
	if err != nil {
		return false, err
	}
	if cost > maxBcryptCost {
		return false, fmt.Errorf("bcrypt cost %d over %d", cost, maxBcryptCost)
	}
	err = bcrypt.CompareHashAndPassword([]byte(h), []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, err
	}
}

// Django's BCryptSHA256PasswordHasher hashes the hex SHA-256 of the password.
func djangoBcryptSHA256(password, h string) (bool, error) {
	d := sha256.Sum256([]byte(password))
	return checkBcrypt(hex.EncodeToString(d[:]), strings.TrimPrefix(h, "bcrypt_sha256$"))
}

func iterations(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxIterations {
		return 0, fmt.Errorf("iterations %q out of range", s)
	}
	return n, nil
}

// djangoPBKDF2: algorithm$iterations$salt$base64(PBKDF2-HMAC(password,
// salt)), the salt used as its UTF-8 bytes, the key as long as the digest.
func djangoPBKDF2[H hash.Hash](h func() H) func(password, stored string) (bool, error) {
	return func(password, stored string) (bool, error) {
		parts := strings.Split(stored, "$")
		if len(parts) != 4 {
			return false, errors.New("malformed Django PBKDF2 hash")
		}
		n, err := iterations(parts[1])
		if err != nil {
			return false, err
		}
		want, err := base64.StdEncoding.DecodeString(parts[3])
		if err != nil {
			return false, errors.New("malformed Django PBKDF2 hash")
		}
		got, err := pbkdf2.Key(h, password, []byte(parts[2]), n, len(want))
		if err != nil {
			return false, err
		}
		return equal(got, want), nil
	}
}

// Werkzeug: pbkdf2:METHOD[:ITERATIONS]$salt$hex and scrypt:N:r:p$salt$hex.

func checkWerkzeugPBKDF2(password, stored string) (bool, error) {
	method, salt, want, err := splitWerkzeug(stored)
	if err != nil {
		return false, err
	}
	m := strings.Split(method, ":")
	if len(m) < 2 || len(m) > 3 {
		return false, errors.New("malformed Werkzeug method")
	}
	n := 260000 // Werkzeug 2.x's default, used when the method names none
	if len(m) == 3 {
		if n, err = iterations(m[2]); err != nil {
			return false, err
		}
	}
	var got []byte
	switch m[1] {
	case "sha256":
		got, err = pbkdf2.Key(sha256.New, password, []byte(salt), n, len(want))
	case "sha512":
		got, err = pbkdf2.Key(sha512.New, password, []byte(salt), n, len(want))
	case "sha1":
		got, err = pbkdf2.Key(sha1.New, password, []byte(salt), n, len(want))
	default:
		return false, fmt.Errorf("unsupported Werkzeug digest %q", m[1])
	}
	if err != nil {
		return false, err
	}
	return equal(got, want), nil
}

func checkWerkzeugScrypt(password, stored string) (bool, error) {
	method, salt, want, err := splitWerkzeug(stored)
	if err != nil {
		return false, err
	}
	var n, r, p int
	if _, err := fmt.Sscanf(method, "scrypt:%d:%d:%d", &n, &r, &p); err != nil {
		return false, errors.New("malformed Werkzeug scrypt method")
	}
	return checkScrypt(password, []byte(salt), n, r, p, want)
}

func splitWerkzeug(stored string) (method, salt string, want []byte, err error) {
	parts := strings.Split(stored, "$")
	if len(parts) != 3 {
		return "", "", nil, errors.New("malformed Werkzeug hash")
	}
	want, err = hex.DecodeString(parts[2])
	if err != nil || len(want) == 0 {
		return "", "", nil, errors.New("malformed Werkzeug hash")
	}
	return parts[0], parts[1], want, nil
}

func checkScrypt(password string, salt []byte, n, r, p int, want []byte) (bool, error) {
	if n < 2 || n&(n-1) != 0 || r < 1 || p < 1 || 128*int64(n)*int64(r) > maxScryptMemory || int64(r)*int64(p) >= 1<<30 {
		return false, fmt.Errorf("scrypt parameters N=%d r=%d p=%d out of range", n, r, p)
	}
	got, err := scrypt.Key([]byte(password), salt, n, r, p, len(want))
	if err != nil {
		return false, err
	}
	return equal(got, want), nil
}

// passlib's PHC scrypt: $scrypt$ln=LOG2N,r=R,p=P$salt$hash, in passlib's
// "adapted base64" (standard alphabet with '.' for '+', no padding).
func checkPHCScrypt(password, stored string) (bool, error) {
	parts := strings.Split(stored, "$")
	if len(parts) != 5 {
		return false, errors.New("malformed scrypt hash")
	}
	var ln, r, p int
	if _, err := fmt.Sscanf(parts[2], "ln=%d,r=%d,p=%d", &ln, &r, &p); err != nil || ln < 1 || ln > 30 {
		return false, errors.New("malformed scrypt parameters")
	}
	salt, err1 := ab64(parts[3])
	want, err2 := ab64(parts[4])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, errors.New("malformed scrypt hash")
	}
	return checkScrypt(password, salt, 1<<ln, r, p, want)
}

func ab64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.ReplaceAll(s, ".", "+"))
}

// Keycloak's pbkdf2 credentials, as its realm export writes them: either
// flattened ({"algorithm", "hashIterations", "salt", "value"}) or as the
// export's own pair of JSON strings ({"credentialData", "secretData"}).
func checkKeycloak(password, stored string) (bool, error) {
	var c struct {
		Algorithm      string `json:"algorithm"`
		HashIterations int    `json:"hashIterations"`
		Salt           string `json:"salt"`
		Value          string `json:"value"`
		CredentialData string `json:"credentialData"`
		SecretData     string `json:"secretData"`
	}
	if err := json.Unmarshal([]byte(stored), &c); err != nil {
		return false, errors.New("malformed Keycloak credential")
	}
	if c.CredentialData != "" || c.SecretData != "" {
		if json.Unmarshal([]byte(c.CredentialData), &c) != nil || json.Unmarshal([]byte(c.SecretData), &c) != nil {
			return false, errors.New("malformed Keycloak credential")
		}
	}
	n, err := iterations(strconv.Itoa(c.HashIterations))
	if err != nil {
		return false, err
	}
	salt, err1 := base64.StdEncoding.DecodeString(c.Salt)
	want, err2 := base64.StdEncoding.DecodeString(c.Value)
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, errors.New("malformed Keycloak credential")
	}
	var got []byte
	switch c.Algorithm {
	case "pbkdf2-sha256":
		got, err = pbkdf2.Key(sha256.New, password, salt, n, len(want))
	case "pbkdf2-sha512":
		got, err = pbkdf2.Key(sha512.New, password, salt, n, len(want))
	case "pbkdf2":
		got, err = pbkdf2.Key(sha1.New, password, salt, n, len(want))
	default:
		return false, fmt.Errorf("unsupported Keycloak algorithm %q", c.Algorithm)
	}
	if err != nil {
		return false, err
	}
	return equal(got, want), nil
}

// Weak digests: Django's salted md5$salt$hex and sha1$salt$hex (digest of
// salt+password), and unsalted hex digests.

func saltedDigest[H hash.Hash](h func() H) func(password, stored string) (bool, error) {
	return func(password, stored string) (bool, error) {
		parts := strings.Split(stored, "$")
		if len(parts) != 3 {
			return false, errors.New("malformed salted digest")
		}
		want, err := hex.DecodeString(parts[2])
		if err != nil {
			return false, errors.New("malformed salted digest")
		}
		d := h()
		d.Write([]byte(parts[1] + password))
		return equal(d.Sum(nil), want), nil
	}
}

func unsaltedDigest[H hash.Hash](h func() H, pre string) func(password, stored string) (bool, error) {
	return func(password, stored string) (bool, error) {
		want, err := hex.DecodeString(strings.TrimPrefix(stored, pre))
		if err != nil {
			return false, errors.New("malformed digest")
		}
		d := h()
		d.Write([]byte(password))
		return equal(d.Sum(nil), want), nil
	}
}

// argon2 PHC strings, argon2id and argon2i.

type argonParams struct {
	Params
	variant string
}

func parseArgon2(hash string) (p argonParams, salt, want []byte, err error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || (parts[1] != "argon2id" && parts[1] != "argon2i") {
		return p, nil, nil, errors.New("not an argon2 hash")
	}
	p.variant = parts[1]
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errors.New("unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("bad argon2 parameters: %w", err)
	}
	if err := p.Validate(); err != nil || p.MemoryKiB > maxArgonMemory || p.Time > 100 {
		return p, nil, nil, errors.New("argon2 parameters out of range")
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("bad argon2 salt: %w", err)
	}
	if want, err = b64.DecodeString(parts[5]); err != nil || len(want) == 0 {
		return p, nil, nil, errors.New("bad argon2 hash")
	}
	return p, salt, want, nil
}

// CheckArgon2 checks a PHC argon2id or argon2i string.
func CheckArgon2(password, hash string) (bool, error) {
	p, salt, want, err := parseArgon2(hash)
	if err != nil {
		return false, err
	}
	var got []byte
	if p.variant == "argon2id" {
		got = argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	} else {
		got = argon2.Key([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	}
	return equal(got, want), nil
}
