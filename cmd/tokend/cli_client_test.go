package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/secret"
)

func TestClientAdd(t *testing.T) {
	t.Run("confidential", func(t *testing.T) {
		f := newFixture(t)
		out := f.must("", "client", "add", "billing", "--grant", "client_credentials", "--json")
		obj := decodeOne[map[string]any](t, out)
		if len(obj) != 2 {
			t.Errorf("output has keys %v, want client_id and client_secret", obj)
		}
		id, _ := obj["client_id"].(string)
		sec, _ := obj["client_secret"].(string)
		if _, err := uuid.Parse(id); err != nil {
			t.Errorf("client_id %q is not a UUID: %v", id, err)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(sec); len(sec) != 43 || err != nil || len(raw) != 32 {
			t.Errorf("client_secret %q: want 43 characters of base64url (32 bytes), err %v", sec, err)
		}

		c := f.client(id)
		if len(c.SecretHash) != 32 || bytes.Equal(c.SecretHash, []byte(sec)) || bytes.Contains(c.SecretHash, []byte(sec)) {
			t.Errorf("stored SecretHash %x: want a 32-byte hash, not the secret", c.SecretHash)
		}
		pepper, err := f.store().Secret(context.Background(), "client_secret_pepper", func() ([]byte, error) {
			return nil, errors.New("the pepper should exist already")
		})
		if err != nil {
			t.Fatal(err)
		}
		if !secret.CheckClientSecret(pepper, sec, c.SecretHash) {
			t.Error("the printed secret does not match the stored hash")
		}
		if c.Name != "billing" || c.Public || c.Disabled || c.Mode != tokend.ModeProduction ||
			!slices.Equal(c.Grants, []string{tokend.GrantClientCredentials}) {
			t.Errorf("stored client %+v", c)
		}
	})

	t.Run("text output shows the secret once", func(t *testing.T) {
		f := newFixture(t)
		out := f.must("", "client", "add", "billing")
		var id, sec string
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "client_id: "); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(line, "client_secret: "); ok {
				sec = v
			}
		}
		if id == "" || len(sec) != 43 || strings.Count(out, sec) != 1 {
			t.Fatalf("output:\n%s", out)
		}
		// Without --grant a confidential client gets client_credentials.
		if c := f.client(id); !slices.Equal(c.Grants, []string{tokend.GrantClientCredentials}) {
			t.Errorf("default grants %v", c.Grants)
		}
	})

	t.Run("public", func(t *testing.T) {
		f := newFixture(t)
		obj := decodeOne[map[string]any](t, f.must("", "client", "add", "spa", "--public", "--json"))
		if _, ok := obj["client_secret"]; ok {
			t.Errorf("a public client got a secret: %v", obj)
		}
		if obj["public"] != true {
			t.Errorf("output %v, want public: true", obj)
		}
		c := f.client(obj["client_id"].(string))
		if !c.Public || len(c.SecretHash) != 0 {
			t.Errorf("stored client public=%v secret hash %x", c.Public, c.SecretHash)
		}
		if want := []string{tokend.GrantPassword, tokend.GrantRefreshToken}; !slices.Equal(c.Grants, want) {
			t.Errorf("default public grants %v, want %v", c.Grants, want)
		}
	})

	// DESIGN.md: flags may come before or after positional arguments.
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"flags after", []string{"client", "add", "web", "--grant", "password", "--grant", "refresh_token", "--mode", "sandbox", "--scope", "read", "--scope", "write", "--json"}},
		{"flags before", []string{"client", "add", "--grant", "password", "--grant", "refresh_token", "--mode", "sandbox", "--scope", "read", "--scope", "write", "--json", "web"}},
		{"flags around", []string{"client", "add", "--grant", "refresh_token", "--mode=sandbox", "--scope", "read", "web", "--grant", "password", "--scope=write", "--json"}},
		{"repeated grant", []string{"client", "add", "--grant", "refresh_token", "web", "--grant", "password", "--grant", "password", "--mode", "sandbox", "--scope", "read", "--scope", "write", "--json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			obj := decodeOne[map[string]any](t, f.must("", tc.args...))
			c := f.client(obj["client_id"].(string))
			if c.Name != "web" || c.Mode != tokend.ModeSandbox ||
				!slices.Equal(c.Grants, []string{tokend.GrantPassword, tokend.GrantRefreshToken}) ||
				!slices.Equal(c.Scopes, []string{"read", "write"}) {
				t.Errorf("stored name %q mode %q grants %v scopes %v", c.Name, c.Mode, c.Grants, c.Scopes)
			}
		})
	}

	t.Run("access ttl", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("svc", "--access-ttl", "5m")
		if c := f.client(id); c.AccessTTL != 5*time.Minute {
			t.Errorf("AccessTTL = %v", c.AccessTTL)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown grant", []string{"--grant", "implicit"}, `"implicit"`},
		{"public client_credentials", []string{"--public", "--grant", "client_credentials"}, "client_credentials"},
		{"bad mode", []string{"--mode", "staging"}, `"staging"`},
		{"scope with a space", []string{"--scope", "read write"}, "--scope"},
		{"scope with a quote", []string{"--scope", `"read`}, "--scope"},
		{"empty scope", []string{"--scope", ""}, "--scope"},
		{"access ttl too long", []string{"--access-ttl", "48h"}, "--access-ttl"},
		{"negative access ttl", []string{"--access-ttl", "-1m"}, "--access-ttl"},
		{"bad duration", []string{"--access-ttl", "soon"}, "access-ttl"},
		{"unknown flag", []string{"--secret", "x"}, "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.run("", append([]string{"client", "add", "app"}, tc.args...)...)
			if ue := wantUsageError(t, err); !strings.Contains(ue.msg, tc.want) {
				t.Errorf("message %q, want it to name %q", ue.msg, tc.want)
			}
			if cl, err := f.store().ListClients(context.Background()); err != nil || len(cl) != 0 {
				t.Errorf("after a usage error the store has clients %v (err %v)", cl, err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no name", []string{"client", "add"}},
		{"two names", []string{"client", "add", "a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.run("", tc.args...)
			wantUsageError(t, err)
		})
	}
	t.Run("bad name", func(t *testing.T) {
		f := newFixture(t)
		_, _, err := f.run("", "client", "add", " padded ")
		wantUsageError(t, err)
	})
}

func TestClientList(t *testing.T) {
	f := newFixture(t)
	if got := decodeOne[[]any](t, f.must("", "client", "list", "--json")); len(got) != 0 {
		t.Fatalf("fresh store lists %v", got)
	}
	conf, sec := f.addClient("backend", "--grant", "client_credentials", "--scope", "read")
	pub, _ := f.addClient("spa", "--public", "--mode", "sandbox")

	out := f.must("", "client", "list", "--json")
	if strings.Contains(out, sec) || strings.Contains(out, "secret") {
		t.Errorf("client list shows secret material:\n%s", out)
	}
	type listed struct {
		ClientID string   `json:"client_id"`
		Name     string   `json:"name"`
		Public   bool     `json:"public"`
		Grants   []string `json:"grants"`
		Scopes   []string `json:"scopes"`
		Mode     string   `json:"mode"`
		Disabled bool     `json:"disabled"`
	}
	got := decodeOne[[]listed](t, out)
	want := []listed{
		{conf, "backend", false, []string{"client_credentials"}, []string{"read"}, "production", false},
		{pub, "spa", true, []string{"password", "refresh_token"}, []string{}, "sandbox", false},
	}
	slices.SortFunc(got, func(a, b listed) int { return strings.Compare(a.Name, b.Name) })
	if len(got) != len(want) {
		t.Fatalf("listed %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ClientID != w.ClientID || g.Name != w.Name || g.Public != w.Public || g.Mode != w.Mode ||
			g.Disabled != w.Disabled || !slices.Equal(g.Grants, w.Grants) || !slices.Equal(g.Scopes, w.Scopes) {
			t.Errorf("listed %+v, want %+v", g, w)
		}
	}

	f.must("", "client", "disable", pub)
	for _, c := range decodeOne[[]listed](t, f.must("", "client", "list", "--json")) {
		if c.Disabled != (c.ClientID == pub) {
			t.Errorf("after disabling %s: %+v", pub, c)
		}
	}

	text := f.must("", "client", "list")
	for _, want := range []string{"CLIENT_ID", conf, pub, "backend", "spa"} {
		if !strings.Contains(text, want) {
			t.Errorf("text list lacks %q:\n%s", want, text)
		}
	}
}

func TestClientRotateSecret(t *testing.T) {
	t.Run("without overlap", func(t *testing.T) {
		f := newFixture(t)
		id, old := f.addClient("svc")
		oldHash := f.client(id).SecretHash

		obj := decodeOne[map[string]string](t, f.must("", "client", "rotate-secret", id, "--json"))
		if len(obj) != 2 || obj["client_id"] != id {
			t.Fatalf("output %v, want client_id %s and client_secret", obj, id)
		}
		sec := obj["client_secret"]
		if len(sec) != 43 || sec == old {
			t.Errorf("new secret %q (old %q)", sec, old)
		}
		c := f.client(id)
		if len(c.SecretHash) != 32 || bytes.Equal(c.SecretHash, oldHash) {
			t.Errorf("stored hash %x did not change from %x", c.SecretHash, oldHash)
		}
		if len(c.PrevSecretHash) != 0 || !c.PrevSecretUntil.IsZero() {
			t.Errorf("without --overlap the old secret stays: prev %x until %v", c.PrevSecretHash, c.PrevSecretUntil)
		}
	})

	t.Run("flag before id", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("svc")
		obj := decodeOne[map[string]string](t, f.must("", "client", "rotate-secret", "--json", id))
		if obj["client_id"] != id || len(obj["client_secret"]) != 43 {
			t.Errorf("output %v", obj)
		}
	})

	t.Run("overlap", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("svc")
		oldHash := f.client(id).SecretHash
		before := time.Now()
		f.must("", "client", "rotate-secret", id, "--overlap", "10m", "--json")
		c := f.client(id)
		if !bytes.Equal(c.PrevSecretHash, oldHash) {
			t.Errorf("PrevSecretHash %x, want the old hash %x", c.PrevSecretHash, oldHash)
		}
		wantNear(t, "PrevSecretUntil", c.PrevSecretUntil, before.Add(10*time.Minute))
	})

	t.Run("text output", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("svc")
		out := f.must("", "client", "rotate-secret", id)
		if !strings.Contains(out, "client_id: "+id) || !strings.Contains(out, "client_secret: ") {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("public client", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("spa", "--public")
		out, _, err := f.run("", "client", "rotate-secret", id, "--json")
		wantCode(t, err, tokend.EINVALID)
		if !strings.Contains(describe(err), "public") || out != "" {
			t.Errorf("message %q, stdout %q", describe(err), out)
		}
		if c := f.client(id); len(c.SecretHash) != 0 {
			t.Errorf("a public client got a secret hash %x", c.SecretHash)
		}
	})

	t.Run("unknown id", func(t *testing.T) {
		f := newFixture(t)
		_, _, err := f.run("", "client", "rotate-secret", uuid.NewString())
		wantCode(t, err, tokend.ENOTFOUND)
	})

	t.Run("negative overlap", func(t *testing.T) {
		f := newFixture(t)
		id, _ := f.addClient("svc")
		_, _, err := f.run("", "client", "rotate-secret", id, "--overlap", "-1m")
		wantUsageError(t, err)
	})

	t.Run("no id", func(t *testing.T) {
		f := newFixture(t)
		_, _, err := f.run("", "client", "rotate-secret")
		wantUsageError(t, err)
	})
}

func TestClientDisable(t *testing.T) {
	f := newFixture(t)
	id, _ := f.addClient("svc")
	other, _ := f.addClient("other")
	out := f.must("", "client", "disable", id)
	if !strings.Contains(out, id) {
		t.Errorf("output %q", out)
	}
	if !f.client(id).Disabled || f.client(other).Disabled {
		t.Error("disable did not touch exactly the named client")
	}
	_, _, err := f.run("", "client", "disable", uuid.NewString())
	wantCode(t, err, tokend.ENOTFOUND)
}
