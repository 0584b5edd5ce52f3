package grant_test

import (
	"context"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/tokendtest"
)

// Benchmarks of each grant's engine path on a real SQLite store, without
// HTTP: what the engine costs beside the signature.

func benchEnv(b *testing.B) (*tokendtest.Env, *tokend.ClientApp, *tokend.ClientApp) {
	b.Helper()
	e := tokendtest.New(b, tokendtest.Options{})
	ctx := context.Background()
	id, sec := e.AddClient(false, "", nil, tokend.GrantClientCredentials, tokend.GrantPassword, tokend.GrantRefreshToken)
	conf, err := e.Engine.AuthenticateClient(ctx, id, sec, false)
	if err != nil {
		b.Fatal(err)
	}
	pubID, _ := e.AddClient(true, "", nil, tokend.GrantPassword, tokend.GrantRefreshToken)
	pub, err := e.Engine.AuthenticateClient(ctx, pubID, "", true)
	if err != nil {
		b.Fatal(err)
	}
	e.AddUser("alice", "pw-of-alice", "ROLE_USER")
	return e, conf, pub
}

func BenchmarkClientCredentials(b *testing.B) {
	e, conf, _ := benchEnv(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Engine.ClientCredentials(ctx, grant.OAuth, conf, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateClient(b *testing.B) {
	e, _, _ := benchEnv(b)
	id, sec := e.AddClient(false, "", nil, tokend.GrantClientCredentials)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Engine.AuthenticateClient(ctx, id, sec, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPassword runs the password grant with cheap argon2id
// parameters (1 MiB, 1 pass), so that it shows the engine's own cost.
func BenchmarkPassword(b *testing.B) {
	e, _, pub := benchEnv(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Engine.Password(ctx, grant.OAuth, pub, "alice", "pw-of-alice", ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRefreshRotation(b *testing.B) {
	e, _, pub := benchEnv(b)
	ctx := context.Background()
	issued, err := e.Engine.Password(ctx, grant.OAuth, pub, "alice", "pw-of-alice", "")
	if err != nil {
		b.Fatal(err)
	}
	rt := issued.RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		next, err := e.Engine.Refresh(ctx, grant.OAuth, pub, rt, "")
		if err != nil {
			b.Fatal(err)
		}
		rt = next.RefreshToken
	}
}

func BenchmarkIntrospect(b *testing.B) {
	e, conf, pub := benchEnv(b)
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		token func() string
	}{
		{"client token", func() string {
			i, _ := e.Engine.ClientCredentials(ctx, grant.OAuth, conf, "")
			return i.AccessToken
		}},
		{"user token", func() string {
			i, _ := e.Engine.Password(ctx, grant.OAuth, pub, "alice", "pw-of-alice", "")
			return i.AccessToken
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			tok := c.token()
			b.ReportAllocs()
			for b.Loop() {
				in, err := e.Engine.Introspect(ctx, conf, tok)
				if err != nil || in == nil {
					b.Fatal("inactive", err)
				}
			}
		})
	}
}
