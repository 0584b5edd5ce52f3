package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

func testClientRoundTrip(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	at := now()
	tests := []struct {
		name   string
		client *tokend.ClientApp
	}{
		{"confidential, every field", &tokend.ClientApp{
			ID:              uuid.NewString(),
			Name:            "Billing backend",
			SecretHash:      append([]byte{0, 0xff}, randomBytes(30)...),
			PrevSecretHash:  randomBytes(32),
			PrevSecretUntil: at.Add(time.Hour),
			Grants:          []string{tokend.GrantClientCredentials, tokend.GrantPassword, tokend.GrantRefreshToken},
			Scopes:          []string{"read", "write", "admin:billing"},
			Mode:            tokend.ModeSandbox,
			AccessTTL:       90 * time.Second,
			Disabled:        true,
			CreatedAt:       at.Add(-time.Hour),
		}},
		{"public, zero values", &tokend.ClientApp{
			ID:        uuid.NewString(),
			Name:      "Mobile app",
			Public:    true,
			Grants:    []string{tokend.GrantPassword},
			Mode:      tokend.ModeProduction,
			CreatedAt: at,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			createClient(t, s, tc.client)
			wantEqual(t, "ClientByID", getClient(t, s, tc.client.ID), tc.client)
		})
	}
}

func testClientDuplicate(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("one"))
	dup := newClient("two")
	dup.ID = c.ID
	wantCode(t, s.CreateClient(t.Context(), dup), tokend.ECONFLICT, "create client with a used id")
	wantEqual(t, "first client", getClient(t, s, c.ID), c)
}

func testClientList(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	got, err := s.ListClients(t.Context())
	must(t, err, "list clients")
	if len(got) != 0 {
		t.Fatalf("ListClients of an empty store = %v, want none", ids(got, clientName))
	}
	want := map[string]*tokend.ClientApp{}
	for _, name := range []string{"one", "two", "three"} {
		c := createClient(t, s, newClient(name))
		want[c.ID] = c
	}
	got, err = s.ListClients(t.Context())
	must(t, err, "list clients")
	if len(got) != len(want) {
		t.Fatalf("ListClients = %v, want 3 clients", ids(got, clientName))
	}
	for _, c := range got {
		if want[c.ID] == nil {
			t.Fatalf("ListClients returned unknown client %s", c.ID)
		}
		wantEqual(t, "listed client "+c.Name, c, want[c.ID])
		delete(want, c.ID)
	}
}

func testClientSetSecret(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("shop"))
	other := createClient(t, s, newClient("other"))
	until := now().Add(time.Hour)
	// Steps run in order on one client; each states the secret fields after it.
	h := [][]byte{c.SecretHash, randomBytes(32), randomBytes(32), randomBytes(32), randomBytes(32)}
	steps := []struct {
		name      string
		hash      []byte
		prevUntil time.Time
		wantPrev  []byte
		wantUntil time.Time
	}{
		{"without overlap", h[1], time.Time{}, nil, time.Time{}},
		{"with overlap", h[2], until, h[1], until},
		{"with overlap again", h[3], until.Add(time.Minute), h[2], until.Add(time.Minute)},
		{"without overlap clears previous", h[4], time.Time{}, nil, time.Time{}},
	}
	for _, st := range steps {
		must(t, s.SetClientSecret(t.Context(), c.ID, st.hash, st.prevUntil), "set client secret "+st.name)
		c.SecretHash, c.PrevSecretHash, c.PrevSecretUntil = st.hash, st.wantPrev, st.wantUntil
		wantEqual(t, "client after SetClientSecret "+st.name, getClient(t, s, c.ID), c)
	}
	wantEqual(t, "other client", getClient(t, s, other.ID), other)
}

func testClientDisable(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	c := createClient(t, s, newClient("shop"))
	other := createClient(t, s, newClient("other"))
	must(t, s.DisableClient(t.Context(), c.ID), "disable client")
	c.Disabled = true
	wantEqual(t, "disabled client", getClient(t, s, c.ID), c)
	wantEqual(t, "other client", getClient(t, s, other.ID), other)
}

func testClientNotFound(t *testing.T, open func(t *testing.T) tokend.Store) {
	s := open(t)
	createClient(t, s, newClient("shop"))
	missing := uuid.NewString()
	tests := []struct {
		name string
		call func() error
	}{
		{"ClientByID", func() error { _, err := s.ClientByID(t.Context(), missing); return err }},
		{"SetClientSecret", func() error { return s.SetClientSecret(t.Context(), missing, randomBytes(32), time.Time{}) }},
		{"DisableClient", func() error { return s.DisableClient(t.Context(), missing) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.call(), tokend.ENOTFOUND, tc.name+" of an unknown client")
		})
	}
}
