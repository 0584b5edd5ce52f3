package grant

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

// KnownGrants are the grants a client app may be allowed.
var KnownGrants = []string{tokend.GrantPassword, tokend.GrantClientCredentials, tokend.GrantRefreshToken}

// CheckGrants checks a client's grants and returns them sorted, without
// duplicates. A public client has no secret, so no client_credentials.
func CheckGrants(field string, grants []string, public bool) ([]string, []tokend.FieldError) {
	var errs []tokend.FieldError
	for i, g := range grants {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !slices.Contains(KnownGrants, g):
			errs = append(errs, fieldErr(f, "unknown grant %q: want password, client_credentials or refresh_token", safeText(g)))
		case public && g == tokend.GrantClientCredentials:
			errs = append(errs, fieldErr(f, "a public client cannot use client_credentials: it has no secret"))
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(grants))), errs
}

// CheckScopes checks the scopes a client may ask for (RFC 6749 §3.3
// scope-tokens) and returns them without duplicates.
func CheckScopes(field string, scopes []string) ([]string, []tokend.FieldError) {
	var errs []tokend.FieldError
	if len(scopes) > MaxScopes {
		errs = append(errs, fieldErr(field, "at most %d scopes", MaxScopes))
	}
	var out []string
	for i, s := range scopes {
		if !ValidScopeToken(s) || len(s) > MaxScopeLen {
			errs = append(errs, fieldErr(fmt.Sprintf("%s[%d]", field, i), "%q is not a scope: 1 to %d printable ASCII characters, no space, quote or backslash", safeText(s), MaxScopeLen))
			continue
		}
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out, errs
}

// CheckMode checks a client's mode.
func CheckMode(field, mode string) []tokend.FieldError {
	if mode != tokend.ModeSandbox && mode != tokend.ModeProduction {
		return []tokend.FieldError{fieldErr(field, "unknown mode %q: want sandbox or production", safeText(mode))}
	}
	return nil
}

// CheckAccessTTL checks a client's own access-token lifetime (0: the
// server's default).
func CheckAccessTTL(field string, ttl time.Duration) []tokend.FieldError {
	if ttl < 0 || ttl > MaxClientAccessTTL {
		return []tokend.FieldError{fieldErr(field, "must be between 0 and %d seconds (%s)", int(MaxClientAccessTTL.Seconds()), MaxClientAccessTTL)}
	}
	return nil
}

// NewClient is what CreateClient makes a client app of.
type NewClient struct {
	Name   string
	Public bool
	// Grants default to client_credentials for a confidential client, and
	// to password and refresh_token for a public one.
	Grants []string
	Scopes []string
	// Mode defaults to production.
	Mode      string
	AccessTTL time.Duration
}

// Check fills in n's defaults, validates it, and returns every problem.
func (n *NewClient) Check() []tokend.FieldError {
	errs := CheckName("name", n.Name)
	if len(n.Grants) == 0 {
		if n.Public {
			n.Grants = []string{tokend.GrantPassword, tokend.GrantRefreshToken}
		} else {
			n.Grants = []string{tokend.GrantClientCredentials}
		}
	}
	if n.Mode == "" {
		n.Mode = tokend.ModeProduction
	}
	var gerrs, serrs []tokend.FieldError
	n.Grants, gerrs = CheckGrants("grants", n.Grants, n.Public)
	n.Scopes, serrs = CheckScopes("scopes", n.Scopes)
	errs = append(append(errs, gerrs...), serrs...)
	errs = append(errs, CheckMode("mode", n.Mode)...)
	return append(errs, CheckAccessTTL("access_ttl", n.AccessTTL)...)
}

// CreateClient creates a client app and returns it with its secret
// ("" for a public client), which is shown this once and stored only as
// a keyed hash. EINVALID lists every bad field.
func (m *Manager) CreateClient(ctx context.Context, n NewClient) (*tokend.ClientApp, string, error) {
	if err := tokend.Invalid(n.Check()); err != nil {
		return nil, "", err
	}
	c := &tokend.ClientApp{
		ID: uuid.Must(uuid.NewV7()).String(), Name: n.Name, Public: n.Public, Grants: n.Grants,
		Scopes: n.Scopes, Mode: n.Mode, AccessTTL: n.AccessTTL, CreatedAt: m.now().UTC().Truncate(time.Microsecond),
	}
	var sec string
	if !n.Public {
		var err error
		if sec, c.SecretHash, err = NewClientSecret(ctx, m.Store); err != nil {
			return nil, "", fmt.Errorf("create client: %w", err)
		}
	}
	if err := m.Store.CreateClient(ctx, c); err != nil {
		return nil, "", fmt.Errorf("create client: %w", err)
	}
	return c, sec, m.done(ctx, "client.created", c.ID, c.ID, fmt.Sprintf("name=%s public=%t grants=%s", c.Name, c.Public, strings.Join(c.Grants, ",")))
}

// Client returns the client app with this id; ENOTFOUND naming it if
// there is none.
func (m *Manager) Client(ctx context.Context, id string) (*tokend.ClientApp, error) {
	c, err := m.Store.ClientByID(ctx, id)
	if tokend.ErrorCode(err) == tokend.ENOTFOUND {
		return nil, tokend.Errorf(tokend.ENOTFOUND, "no client app %q", safeText(id))
	}
	return c, err
}

// Clients returns a page of client apps (tokend.Store's FindClients).
func (m *Manager) Clients(ctx context.Context, q tokend.ClientQuery) ([]*tokend.ClientApp, error) {
	return m.Store.FindClients(ctx, q)
}

// ClientPatch changes some of a client's fields; nil ones stay as they are.
// Whether a client is public never changes.
type ClientPatch struct {
	Name      *string
	Grants    *[]string
	Scopes    *[]string
	Mode      *string
	AccessTTL *time.Duration
	Disabled  *bool
}

// Check validates p for a client that is public or not, normalizes its
// lists, and returns every problem.
func (p *ClientPatch) Check(public bool) []tokend.FieldError {
	var errs []tokend.FieldError
	if p.Name != nil {
		errs = append(errs, CheckName("name", *p.Name)...)
	}
	if p.Grants != nil {
		if len(*p.Grants) == 0 {
			errs = append(errs, fieldErr("grants", "a client needs at least one grant"))
		}
		grants, gerrs := CheckGrants("grants", *p.Grants, public)
		*p.Grants, errs = grants, append(errs, gerrs...)
	}
	if p.Scopes != nil {
		scopes, serrs := CheckScopes("scopes", *p.Scopes)
		*p.Scopes, errs = scopes, append(errs, serrs...)
	}
	if p.Mode != nil {
		errs = append(errs, CheckMode("mode", *p.Mode)...)
	}
	if p.AccessTTL != nil {
		errs = append(errs, CheckAccessTTL("access_ttl", *p.AccessTTL)...)
	}
	return errs
}

func (p *ClientPatch) apply(c *tokend.ClientApp) (tokend.ClientApp, []string) {
	out := *c
	var fields []string
	if p.Name != nil && *p.Name != c.Name {
		out.Name, fields = *p.Name, append(fields, "name")
	}
	if p.Grants != nil && !slices.Equal(*p.Grants, c.Grants) {
		out.Grants, fields = *p.Grants, append(fields, "grants")
	}
	if p.Scopes != nil && !slices.Equal(*p.Scopes, c.Scopes) {
		out.Scopes, fields = *p.Scopes, append(fields, "scopes")
	}
	if p.Mode != nil && *p.Mode != c.Mode {
		out.Mode, fields = *p.Mode, append(fields, "mode")
	}
	if p.AccessTTL != nil && *p.AccessTTL != c.AccessTTL {
		out.AccessTTL, fields = *p.AccessTTL, append(fields, "access_ttl")
	}
	if p.Disabled != nil && *p.Disabled != c.Disabled {
		out.Disabled, fields = *p.Disabled, append(fields, "disabled")
	}
	return out, fields
}

// UpdateClient changes a client app, as UpdateUser changes a user: the
// version is compared in the write, so a concurrent change is never lost.
// Disabling a client refuses its tokens and credentials at once.
func (m *Manager) UpdateClient(ctx context.Context, id string, p ClientPatch, match Precondition) (*tokend.ClientApp, error) {
	for attempt := 0; ; attempt++ {
		c, err := m.Client(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := tokend.Invalid(p.Check(c.Public)); err != nil {
			return nil, err
		}
		if match != nil && !match(c.Version) {
			return nil, errStale
		}
		next, fields := p.apply(c)
		if len(fields) == 0 {
			return c, nil
		}
		err = m.Store.UpdateClient(ctx, &next, c.Version)
		switch code := tokend.ErrorCode(err); {
		case code == tokend.EPRECONDITION && match == nil && attempt < 5:
			continue
		case code == tokend.EPRECONDITION:
			return nil, errStale
		case code == tokend.ENOTFOUND:
			return nil, tokend.Errorf(tokend.ENOTFOUND, "no client app %q", safeText(id))
		case err != nil:
			return nil, fmt.Errorf("update client: %w", err)
		}
		event := "client.updated"
		if len(fields) == 1 && fields[0] == "disabled" {
			event = map[bool]string{true: "client.disabled", false: "client.enabled"}[next.Disabled]
		}
		return &next, m.done(ctx, event, next.ID, next.ID, "fields="+strings.Join(fields, ","))
	}
}

// SetClientDisabled disables a client app or enables it.
func (m *Manager) SetClientDisabled(ctx context.Context, id string, disabled bool) (*tokend.ClientApp, error) {
	return m.UpdateClient(ctx, id, ClientPatch{Disabled: &disabled}, nil)
}

// DeleteClient deletes a client app with its end users and their
// sessions and every session at the client: their tokens stop working at
// once. With match, as DeleteUser.
func (m *Manager) DeleteClient(ctx context.Context, id string, match Precondition) error {
	c, err := m.Client(ctx, id)
	if err != nil {
		return err
	}
	var version int64
	if match != nil {
		if !match(c.Version) {
			return errStale
		}
		version = c.Version
	}
	switch err := m.Store.DeleteClient(ctx, id, version); tokend.ErrorCode(err) {
	case "":
	case tokend.EPRECONDITION:
		return errStale
	case tokend.ENOTFOUND:
		return tokend.Errorf(tokend.ENOTFOUND, "no client app %q", safeText(id))
	default:
		return fmt.Errorf("delete client: %w", err)
	}
	return m.done(ctx, "client.deleted", c.ID, c.ID, "name="+c.Name)
}

// RotateSecret gives a confidential client a new secret and returns it
// with the client as it now stands; the old secret keeps working for
// overlap (0: not at all). EINVALID for a public client or an overlap out
// of range.
func (m *Manager) RotateSecret(ctx context.Context, id string, overlap time.Duration) (string, *tokend.ClientApp, error) {
	if overlap < 0 || overlap > MaxOverlap {
		return "", nil, tokend.Invalid([]tokend.FieldError{fieldErr("overlap", "must be between 0 and %d seconds (%s)", int(MaxOverlap.Seconds()), MaxOverlap)})
	}
	c, err := m.Client(ctx, id)
	if err != nil {
		return "", nil, err
	}
	if c.Public {
		return "", nil, tokend.Errorf(tokend.EINVALID, "client %s is public and has no secret", c.ID)
	}
	sec, err := RotateClientSecret(ctx, m.Store, c.ID, overlap, m.now())
	if err != nil {
		return "", nil, fmt.Errorf("rotate client secret: %w", err)
	}
	if c, err = m.Client(ctx, id); err != nil {
		return "", nil, err
	}
	return sec, c, m.done(ctx, "client.secret_rotated", c.ID, c.ID, "overlap="+overlap.String())
}
