package adminapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
)

// The objects of ADMIN-API.md as they go on the wire. Times are RFC 3339
// UTC to the second, null when they never happened; durations are whole
// seconds; lists and maps are [] and {} when empty, never null. Nothing
// here ever holds a secret or a hash.

func timeJSON(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func idOrNull(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}

func list(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

type userJSON struct {
	ID            string         `json:"id"`
	Username      string         `json:"username"`
	Roles         []string       `json:"roles"`
	Claims        map[string]any `json:"claims"`
	Disabled      bool           `json:"disabled"`
	ClientID      *string        `json:"client_id"`
	CreatedAt     *string        `json:"created_at"`
	LastLoginAt   *string        `json:"last_login_at"`
	LastRefreshAt *string        `json:"last_refresh_at"`
}

func userOut(u *tokend.User) userJSON {
	claims := u.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	return userJSON{
		ID: u.ID, Username: u.Username, Roles: list(u.Roles), Claims: claims, Disabled: u.Disabled,
		ClientID: idOrNull(u.ClientID), CreatedAt: timeJSON(u.CreatedAt),
		LastLoginAt: timeJSON(u.LastLoginAt), LastRefreshAt: timeJSON(u.LastRefreshAt),
	}
}

type clientJSON struct {
	ID                      string   `json:"id"`
	Name                    string   `json:"name"`
	Public                  bool     `json:"public"`
	Grants                  []string `json:"grants"`
	Scopes                  []string `json:"scopes"`
	Mode                    string   `json:"mode"`
	AccessTTL               int64    `json:"access_ttl"`
	Disabled                bool     `json:"disabled"`
	CreatedAt               *string  `json:"created_at"`
	PreviousSecretExpiresAt *string  `json:"previous_secret_expires_at"`
}

func clientOut(c *tokend.ClientApp) clientJSON {
	var prev time.Time
	if len(c.PrevSecretHash) > 0 {
		prev = c.PrevSecretUntil
	}
	return clientJSON{
		ID: c.ID, Name: c.Name, Public: c.Public, Grants: list(c.Grants), Scopes: list(c.Scopes), Mode: c.Mode,
		AccessTTL: int64(c.AccessTTL / time.Second), Disabled: c.Disabled, CreatedAt: timeJSON(c.CreatedAt),
		PreviousSecretExpiresAt: timeJSON(prev),
	}
}

type sessionJSON struct {
	ID        string  `json:"id"`
	UserID    string  `json:"user_id"`
	ClientID  *string `json:"client_id"`
	Dialect   string  `json:"dialect"`
	Scope     string  `json:"scope"`
	CreatedAt *string `json:"created_at"`
	ExpiresAt *string `json:"expires_at"`
	RotatedAt *string `json:"rotated_at"`
	RevokedAt *string `json:"revoked_at"`
}

func sessionOut(s *tokend.Session) sessionJSON {
	return sessionJSON{
		ID: s.ID, UserID: s.UserID, ClientID: idOrNull(s.ClientID), Dialect: s.Dialect, Scope: s.Scope,
		CreatedAt: timeJSON(s.CreatedAt), ExpiresAt: timeJSON(s.ExpiresAt), RotatedAt: timeJSON(s.RotatedAt), RevokedAt: timeJSON(s.RevokedAt),
	}
}

type keyJSON struct {
	Kid         string  `json:"kid"`
	Alg         string  `json:"alg"`
	Status      string  `json:"status"`
	CreatedAt   *string `json:"created_at"`
	ActivatesAt *string `json:"activates_at"`
	RevokedAt   *string `json:"revoked_at"`
}

func keyOut(k grant.KeyInfo) keyJSON {
	return keyJSON{Kid: k.Kid, Alg: k.Alg, Status: k.Status, CreatedAt: timeJSON(k.CreatedAt), ActivatesAt: timeJSON(k.ActivatesAt), RevokedAt: timeJSON(k.RevokedAt)}
}

type auditJSON struct {
	Seq      int64   `json:"seq"`
	At       *string `json:"at"`
	Event    string  `json:"event"`
	Subject  string  `json:"subject"`
	ClientID string  `json:"client_id"`
	Dialect  string  `json:"dialect"`
	IP       string  `json:"ip"`
	Outcome  string  `json:"outcome"`
	Detail   string  `json:"detail"`
	Count    int     `json:"count"`
	Actor    string  `json:"actor"`
}

func auditOut(e tokend.AuditEvent) auditJSON {
	return auditJSON{
		Seq: e.Seq, At: timeJSON(e.At), Event: e.Event, Subject: e.Subject, ClientID: e.ClientID,
		Dialect: e.Dialect, IP: e.IP, Outcome: e.Outcome, Detail: e.Detail, Count: e.Count, Actor: e.Actor,
	}
}

// Entity tags (RFC 9110 §8.8.3). A user's or client's is its version,
// which the store moves with every change, so that If-Match can be
// compared inside the store's write; a key's is a digest of what is shown.

func versionTag(kind string, version int64) string {
	return `"` + kind + strconv.FormatInt(version, 10) + `"`
}

func userTag(u *tokend.User) string        { return versionTag("u", u.Version) }
func clientTag(c *tokend.ClientApp) string { return versionTag("c", c.Version) }

func keyTag(k keyJSON) string {
	b, _ := json.Marshal(k)
	sum := sha256.Sum256(b)
	return `"k` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}

// precondition reads If-Match (RFC 9110 §13.1.1): nil when it is absent or
// "*"; otherwise a test of whether an object's version has one of the
// listed tags, compared strongly (a weak tag never matches).
func precondition(r *http.Request, kind string) grant.Precondition {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return nil
	}
	var tags []string
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			switch t = strings.TrimSpace(t); t {
			case "*":
				return nil
			case "":
			default:
				tags = append(tags, t)
			}
		}
	}
	return func(version int64) bool { return slices.Contains(tags, versionTag(kind, version)) }
}
