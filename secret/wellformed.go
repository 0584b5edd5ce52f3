package secret

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// WellFormed tells whether a stored hash is one that CheckPassword can
// use: a format Identify knows (ErrUnknownFormat otherwise), with every
// part decodable and its cost parameters within the bounds CheckPassword
// accepts. It does none of the hash's work, so that an import can check
// each of a million records at once rather than find at a user's first
// login that the hash it brought is truncated. The error says what is
// wrong without quoting the hash.
func WellFormed(hash string) error {
	f, err := lookup(hash)
	if err != nil {
		return err
	}
	switch f.name {
	case "argon2id", "argon2i":
		_, _, _, err = parseArgon2(hash)
	case "django-argon2":
		_, _, _, err = parseArgon2(strings.TrimPrefix(hash, "argon2"))
	case "bcrypt":
		err = bcryptWellFormed(hash)
	case "django-bcrypt":
		err = bcryptWellFormed(strings.TrimPrefix(hash, "bcrypt$"))
	case "django-bcrypt-sha256":
		err = bcryptWellFormed(strings.TrimPrefix(hash, "bcrypt_sha256$"))
	case "django-pbkdf2-sha256", "django-pbkdf2-sha1":
		err = djangoPBKDF2WellFormed(hash)
	case "keycloak":
		err = keycloakWellFormed(hash)
	case "scrypt":
		err = phcScryptWellFormed(hash)
	case "werkzeug-pbkdf2":
		err = werkzeugPBKDF2WellFormed(hash)
	case "werkzeug-scrypt":
		err = werkzeugScryptWellFormed(hash)
	case "django-md5", "django-sha1":
		parts := strings.Split(hash, "$")
		size := map[string]int{"django-md5": md5.Size, "django-sha1": sha1.Size}[f.name]
		if len(parts) != 3 || !hexOf(size)(parts[2]) {
			err = errors.New("malformed salted digest")
		}
	case "django-unsalted-md5":
		err = hexDigest(strings.TrimPrefix(hash, "unsalted_md5$$"), md5.Size)
	case "django-unsalted-sha1":
		err = hexDigest(strings.TrimPrefix(hash, "unsalted_sha1$$"), sha1.Size)
	case "md5", "sha1":
		// Identify matched a hex digest of the right length.
	default:
		err = fmt.Errorf("no check of the form of %s hashes", f.name)
	}
	if err != nil {
		return fmt.Errorf("%s hash: %w", f.name, err)
	}
	return nil
}

// iterationsOK is iterations' check, with a message that does not quote
// the hash.
func iterationsOK(s string) error {
	if _, err := iterations(s); err != nil {
		return fmt.Errorf("iteration count not a number from 1 to %d", maxIterations)
	}
	return nil
}

func hexDigest(s string, size int) error {
	if !hexOf(size)(s) {
		return errors.New("malformed digest")
	}
	return nil
}

// bcryptAlphabet is bcrypt's own base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func bcryptWellFormed(h string) error {
	if !isBcrypt(h) || h[6] != '$' || strings.Trim(h[7:], bcryptAlphabet) != "" {
		return errors.New("malformed bcrypt hash")
	}
	cost, err := bcrypt.Cost([]byte(h))
	if err != nil {
		return errors.New("malformed bcrypt cost")
	}
	if cost > maxBcryptCost {
		return fmt.Errorf("bcrypt cost %d over %d", cost, maxBcryptCost)
	}
	return nil
}

func djangoPBKDF2WellFormed(h string) error {
	parts := strings.Split(h, "$")
	if len(parts) != 4 {
		return errors.New("malformed Django PBKDF2 hash")
	}
	if err := iterationsOK(parts[1]); err != nil {
		return err
	}
	if want, err := base64.StdEncoding.DecodeString(parts[3]); err != nil || len(want) == 0 {
		return errors.New("malformed Django PBKDF2 hash")
	}
	return nil
}

func keycloakWellFormed(h string) error {
	var c struct {
		Algorithm      string `json:"algorithm"`
		HashIterations int    `json:"hashIterations"`
		Salt           string `json:"salt"`
		Value          string `json:"value"`
		CredentialData string `json:"credentialData"`
		SecretData     string `json:"secretData"`
	}
	if err := json.Unmarshal([]byte(h), &c); err != nil {
		return errors.New("malformed Keycloak credential")
	}
	if c.CredentialData != "" || c.SecretData != "" {
		if json.Unmarshal([]byte(c.CredentialData), &c) != nil || json.Unmarshal([]byte(c.SecretData), &c) != nil {
			return errors.New("malformed Keycloak credential")
		}
	}
	if err := iterationsOK(strconv.Itoa(c.HashIterations)); err != nil {
		return err
	}
	_, err1 := base64.StdEncoding.DecodeString(c.Salt)
	want, err2 := base64.StdEncoding.DecodeString(c.Value)
	if err1 != nil || err2 != nil || len(want) == 0 {
		return errors.New("malformed Keycloak credential")
	}
	switch c.Algorithm {
	case "pbkdf2-sha256", "pbkdf2-sha512", "pbkdf2":
		return nil
	}
	return errors.New("unsupported Keycloak algorithm")
}

func scryptParams(n, r, p int) error {
	if n < 2 || n&(n-1) != 0 || r < 1 || p < 1 || 128*int64(n)*int64(r) > maxScryptMemory || int64(r)*int64(p) >= 1<<30 {
		return fmt.Errorf("scrypt parameters N=%d r=%d p=%d out of range", n, r, p)
	}
	return nil
}

func phcScryptWellFormed(h string) error {
	parts := strings.Split(h, "$")
	if len(parts) != 5 {
		return errors.New("malformed scrypt hash")
	}
	var ln, r, p int
	if _, err := fmt.Sscanf(parts[2], "ln=%d,r=%d,p=%d", &ln, &r, &p); err != nil || ln < 1 || ln > 30 {
		return errors.New("malformed scrypt parameters")
	}
	_, err1 := ab64(parts[3])
	want, err2 := ab64(parts[4])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return errors.New("malformed scrypt hash")
	}
	return scryptParams(1<<ln, r, p)
}

func werkzeugPBKDF2WellFormed(h string) error {
	method, _, _, err := splitWerkzeug(h)
	if err != nil {
		return err
	}
	m := strings.Split(method, ":")
	if len(m) < 2 || len(m) > 3 {
		return errors.New("malformed Werkzeug method")
	}
	if len(m) == 3 {
		if err := iterationsOK(m[2]); err != nil {
			return err
		}
	}
	switch m[1] {
	case "sha256", "sha512", "sha1":
		return nil
	}
	return errors.New("unsupported Werkzeug digest")
}

func werkzeugScryptWellFormed(h string) error {
	method, _, _, err := splitWerkzeug(h)
	if err != nil {
		return err
	}
	var n, r, p int
	if _, err := fmt.Sscanf(method, "scrypt:%d:%d:%d", &n, &r, &p); err != nil {
		return errors.New("malformed Werkzeug scrypt method")
	}
	return scryptParams(n, r, p)
}
