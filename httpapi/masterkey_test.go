package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/secret"
	"github.com/tokend/tokend/sqlite"
	"github.com/tokend/tokend/tokendtest"
)

func withVault(v *keys.Vault) envOption {
	return func(o *tokendtest.Options) { o.Vault = v }
}

func TestMasterKeySealsKeysAtRest(t *testing.T) {
	vault, err := keys.NewVault([]byte(strings.Repeat("m", 32)))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withVault(vault))
	login := e.login()
	if r := e.refresh(login.Str(t, "refresh_token")); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	e.verifyWithJWKS(e.ccToken())

	ctx := context.Background()
	stored, err := e.Store.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range stored {
		if !bytes.HasPrefix(k.PrivateKey, []byte("tokend-sealed-v1:")) {
			t.Fatalf("key %s is stored in the clear", k.ID)
		}
	}
	rk, _ := e.Store.Secret(ctx, "refresh_token_key", nil)
	if !bytes.HasPrefix(rk, []byte("tokend-sealed-v1:")) {
		t.Fatal("the refresh-token key is stored in the clear")
	}

	start := func(v *keys.Vault) error {
		st, err := sqlite.Open(ctx, e.DBFile)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		h, _ := secret.NewHasher(tokendtest.Cheap, 1, 1)
		eng, err := grant.New(e.Engine.Config(), grant.Deps{Store: st, Hasher: h, Vault: v})
		if err != nil {
			t.Fatal(err)
		}
		return eng.Start(ctx)
	}
	if err := start(nil); !errors.Is(err, keys.ErrNoMasterKey) {
		t.Fatalf("a store with sealed keys must refuse to start without the master key: %v", err)
	}
	other, _ := keys.NewVault([]byte(strings.Repeat("x", 32)))
	if err := start(other); !errors.Is(err, keys.ErrWrongMasterKey) {
		t.Fatalf("the wrong master key must be refused: %v", err)
	}
	if err := start(vault); err != nil {
		t.Fatalf("the right master key: %v", err)
	}
}
