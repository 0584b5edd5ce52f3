package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend"
)

// TestKeyExport: `tokend key export` prints the public key that verifies
// what the server signs, as a PKIX PEM block (what Atoti takes for RS256),
// a JWK and a JWKS like the server's, from a store whose keys are sealed
// with a master key; never a private part.
func TestKeyExport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	hermeticEnv(t)
	dir := t.TempDir()
	master := filepath.Join(dir, "master.key")
	if err := os.WriteFile(master, []byte(hex.EncodeToString(randomBytes(32))), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dir, "--alg", "RS256", "--master-key-file", master)
	var c map[string]string
	json.Unmarshal([]byte(s.cli(t, "", "client", "add", "svc", "--grant", "client_credentials", "--json")), &c)
	r := s.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, c["client_id"], c["client_secret"])
	tok := r.str("access_token")
	if r.status != 200 || tok == "" {
		t.Fatalf("token: %d %v", r.status, r.body)
	}
	export := func(args ...string) (string, string, error) {
		return runCLI(t, "", append(append([]string{"key", "export"}, args...), "--db", s.db, "--master-key-file", master)...)
	}
	verify := func(what string, key any) {
		t.Helper()
		jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jws.Verify(key); err != nil {
			t.Errorf("the %s does not verify the server's token: %v", what, err)
		}
	}
	noPrivate := func(what, out string) {
		t.Helper()
		if strings.Contains(out, "PRIVATE") || strings.Contains(out, `"d"`) || strings.Contains(out, `"p"`) {
			t.Errorf("the %s holds a private part:\n%s", what, out)
		}
	}

	out, stderr, err := export("--format", "pem", "--alg", "RS256")
	if err != nil {
		t.Fatal(err)
	}
	noPrivate("PEM", out)
	block, rest := pem.Decode([]byte(out))
	if block == nil || block.Type != "PUBLIC KEY" || len(strings.TrimSpace(string(rest))) > 0 {
		t.Fatalf("not one PUBLIC KEY block: %q", out)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if _, ok := pub.(*rsa.PublicKey); err != nil || !ok {
		t.Fatalf("PEM: %T %v", pub, err)
	}
	verify("PEM key", pub)
	header := mustDecodeHeader(t, tok)
	var h struct{ Kid string }
	json.Unmarshal(header, &h)
	if !strings.Contains(stderr, "kid "+h.Kid+" (RS256, signing)") {
		t.Errorf("stderr %q does not name the kid %s", stderr, h.Kid)
	}

	out, _, err = export("--format", "jwk")
	if err != nil {
		t.Fatal(err)
	}
	noPrivate("JWK", out)
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &jwk); err != nil || !jwk.IsPublic() || jwk.KeyID != h.Kid || jwk.Algorithm != "RS256" || jwk.Use != "sig" {
		t.Fatalf("JWK: %v %+v", err, jwk)
	}
	verify("JWK", &jwk)

	// JWKS: the server's own set.
	out, _, err = export("--format", "jwks")
	if err != nil {
		t.Fatal(err)
	}
	noPrivate("JWKS", out)
	var mine, served jose.JSONWebKeySet
	json.Unmarshal([]byte(out), &mine)
	resp := s.get("/.well-known/jwks.json")
	b, _ := json.Marshal(resp.body)
	json.Unmarshal(b, &served)
	if len(mine.Keys) != 1 || len(served.Keys) != 1 || mine.Keys[0].KeyID != served.Keys[0].KeyID {
		t.Errorf("JWKS %s, the server's %s", out, b)
	}
	verify("JWKS key", &mine.Keys[0])

	// Two lines of keys: a JWK needs a choice; --kid makes it.
	s.cli(t, "", "key", "rotate", "--alg", "ES256", "--master-key-file", master)
	_, _, err = export("--format", "jwk")
	if tokend.ErrorCode(err) != tokend.EINVALID || !strings.Contains(tokend.ErrorMessage(err), "2 keys match") {
		t.Errorf("a JWK of two keys: %v", err)
	}
	out, _, err = export("--format", "jwk", "--kid", h.Kid)
	if err != nil || !strings.Contains(out, h.Kid) {
		t.Errorf("--kid: %v %s", err, out)
	}
	out, _, _ = export("--format", "jwks")
	json.Unmarshal([]byte(out), &mine)
	var algs []string
	for _, k := range mine.Keys {
		algs = append(algs, k.Algorithm)
	}
	if slices.Sort(algs); !slices.Equal(algs, []string{"ES256", "RS256"}) {
		t.Errorf("JWKS algorithms %v", algs)
	}
	for _, c := range []struct {
		args []string
		code string
	}{
		{[]string{"--format", "pem", "--kid", "nope"}, tokend.ENOTFOUND},
		{[]string{"--format", "pem", "--alg", "EdDSA"}, tokend.ENOTFOUND},
		{[]string{"--format", "pem", "--kid", h.Kid, "--alg", "ES256"}, tokend.EINVALID},
	} {
		if _, _, err := export(c.args...); tokend.ErrorCode(err) != c.code {
			t.Errorf("%v: %v, want %s", c.args, err, c.code)
		}
	}
	// Sealed keys need the master key.
	if _, _, err := runCLI(t, "", "key", "export", "--format", "pem", "--db", s.db); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Errorf("without the master key: %v", err)
	}
	for _, args := range [][]string{{}, {"--format", "der"}, {"--format", "pem", "--alg", "HS256"}} {
		_, _, err := runCLI(t, "", append([]string{"key", "export", "--db", s.db}, args...)...)
		wantUsageError(t, err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
