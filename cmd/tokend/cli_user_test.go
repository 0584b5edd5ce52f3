package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tokend/tokend"
)

func TestUserAddPasswordStdin(t *testing.T) {
	for _, tc := range []struct {
		name, stdin, want string
	}{
		{"newline", "correct horse\n", "correct horse"},
		{"crlf", "correct horse\r\n", "correct horse"},
		{"no newline", "correct horse", "correct horse"},
		{"first line only", "first\nsecond\n", "first"},
		{"spaces kept", "  spaced  \n", "  spaced  "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			out := f.must(tc.stdin, append([]string{"user", "add", "alice", "--password-stdin"}, cheapArgon...)...)
			if strings.Contains(out, tc.want) {
				t.Errorf("stdout shows the password:\n%s", out)
			}
			u := f.user("alice")
			if u.PasswordHash == "" || strings.Contains(u.PasswordHash, tc.want) {
				t.Fatalf("stored hash %q", u.PasswordHash)
			}
			if !checkPassword(t, tc.want, u.PasswordHash) {
				t.Errorf("%q does not verify against the stored hash", tc.want)
			}
			for _, wrong := range []string{tc.want + "\n", tc.want + "\r", tc.want + "\r\n"} {
				if checkPassword(t, wrong, u.PasswordHash) {
					t.Errorf("%q verifies: the line ending was kept", wrong)
				}
			}
		})
	}

	for _, tc := range []struct{ name, stdin string }{
		{"empty stdin", ""},
		{"empty line", "\n"},
		{"empty crlf line", "\r\n"},
		{"too long", strings.Repeat("x", 1025) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.run(tc.stdin, append([]string{"user", "add", "alice", "--password-stdin"}, cheapArgon...)...)
			wantCode(t, err, tokend.EINVALID)
			if _, err := f.store().UserByName(context.Background(), "alice"); tokend.ErrorCode(err) != tokend.ENOTFOUND {
				t.Errorf("the user was created anyway (err %v)", err)
			}
		})
	}

	t.Run("roles", func(t *testing.T) {
		f := newFixture(t)
		f.addUser("alice", "pw-alice", "--role", "admin", "--role", "ops")
		if u := f.user("alice"); !slices.Equal(u.Roles, []string{"admin", "ops"}) {
			t.Errorf("roles %v", u.Roles)
		}
	})

	t.Run("flags before name", func(t *testing.T) {
		f := newFixture(t)
		args := append([]string{"user", "add", "--password-stdin", "--role", "admin"}, cheapArgon...)
		f.must("pw\n", append(args, "bob")...)
		if u := f.user("bob"); !slices.Equal(u.Roles, []string{"admin"}) || !checkPassword(t, "pw", u.PasswordHash) {
			t.Errorf("stored %+v", u)
		}
	})

	t.Run("duplicate", func(t *testing.T) {
		f := newFixture(t)
		f.addUser("alice", "pw1")
		_, errOut, err := f.run("pw2\n", append([]string{"user", "add", "alice", "--password-stdin"}, cheapArgon...)...)
		wantCode(t, err, tokend.ECONFLICT)
		if msg := describe(err); !strings.Contains(msg, "alice") || !strings.Contains(msg, "exists") {
			t.Errorf("message %q, want it to say alice exists", msg)
		}
		if strings.Contains(errOut, "pw2") {
			t.Errorf("stderr shows the password: %q", errOut)
		}
		if !checkPassword(t, "pw1", f.user("alice").PasswordHash) {
			t.Error("the duplicate replaced the first user's password")
		}
	})

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"role with a space", []string{"--role", "a b"}},
		{"empty role", []string{"--role", ""}},
		{"weak argon2 memory", []string{"--argon2-memory", "512"}},
		{"zero argon2 time", []string{"--argon2-time", "0"}},
		{"argon2 memory not a number", []string{"--argon2-memory", "lots"}},
		{"no name", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			args := []string{"user", "add", "alice", "--password-stdin"}
			if tc.args == nil {
				args = []string{"user", "add", "--password-stdin"}
			}
			_, _, err := f.run("pw\n", append(args, tc.args...)...)
			wantUsageError(t, err)
		})
	}
}

func TestUserAddGeneratedPassword(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		f := newFixture(t)
		out := f.must("ignored\n", append([]string{"user", "add", "carol"}, cheapArgon...)...)
		var pw string
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "password: "); ok {
				pw = v
			}
		}
		if len(pw) < 20 || strings.Count(out, pw) != 1 {
			t.Fatalf("want the generated password once:\n%s", out)
		}
		if !checkPassword(t, pw, f.user("carol").PasswordHash) {
			t.Error("the printed password does not verify")
		}
	})
	t.Run("json", func(t *testing.T) {
		f := newFixture(t)
		obj := decodeOne[map[string]any](t, f.must("", append([]string{"user", "add", "carol", "--json", "--role", "ops"}, cheapArgon...)...))
		pw, _ := obj["password"].(string)
		u := f.user("carol")
		if obj["id"] != u.ID || obj["username"] != "carol" || len(pw) < 20 {
			t.Fatalf("output %v", obj)
		}
		if !checkPassword(t, pw, u.PasswordHash) {
			t.Error("the printed password does not verify")
		}
	})
	t.Run("json with stdin shows no password", func(t *testing.T) {
		f := newFixture(t)
		obj := decodeOne[map[string]any](t, f.must("pw\n", append([]string{"user", "add", "carol", "--json", "--password-stdin"}, cheapArgon...)...))
		if _, ok := obj["password"]; ok {
			t.Errorf("output %v has a password", obj)
		}
	})
}

func TestUserList(t *testing.T) {
	f := newFixture(t)
	if got := decodeOne[[]any](t, f.must("", "user", "list", "--json")); len(got) != 0 {
		t.Fatalf("fresh store lists %v", got)
	}
	f.addUser("bob", "pw-bob")
	f.addUser("alice", "pw-alice", "--role", "admin", "--role", "ops")

	appID, _ := f.addClient("app")
	endUser := &tokend.User{ID: uuid.Must(uuid.NewV7()).String(), Username: "app-user-1", ClientID: appID, CreatedAt: time.Now()}
	if err := f.store().CreateUser(context.Background(), endUser); err != nil {
		t.Fatal(err)
	}

	out := f.must("", "user", "list", "--json")
	if strings.Contains(out, "argon2") || strings.Contains(out, "pw-") {
		t.Errorf("user list shows password material:\n%s", out)
	}
	got := decodeOne[[]map[string]any](t, out)
	if len(got) != 2 || got[0]["username"] != "alice" || got[1]["username"] != "bob" {
		t.Fatalf("listed %v, want alice and bob (not the client's end user)", got)
	}
	alice := got[0]
	if alice["id"] != f.user("alice").ID || alice["disabled"] != false || alice["last_login_at"] != nil {
		t.Errorf("alice listed as %v", alice)
	}
	if roles, _ := alice["roles"].([]any); len(roles) != 2 || roles[0] != "admin" || roles[1] != "ops" {
		t.Errorf("alice's roles %v", alice["roles"])
	}
	if roles, ok := got[1]["roles"].([]any); !ok || len(roles) != 0 {
		t.Errorf("bob's roles %v, want []", got[1]["roles"])
	}
	if _, ok := alice["client_id"]; ok {
		t.Errorf("a user of no client has client_id: %v", alice)
	}

	for _, args := range [][]string{
		{"user", "list", "--client", appID, "--json"},
		{"user", "list", "--json", "--client=" + appID},
	} {
		got := decodeOne[[]map[string]any](t, f.must("", args...))
		if len(got) != 1 || got[0]["username"] != "app-user-1" || got[0]["client_id"] != appID || got[0]["id"] != endUser.ID {
			t.Errorf("%v listed %v, want only the client's end user", args, got)
		}
	}
	if got := decodeOne[[]any](t, f.must("", "user", "list", "--client", uuid.NewString(), "--json")); len(got) != 0 {
		t.Errorf("another client lists %v", got)
	}

	f.must("", "user", "disable", "bob")
	got = decodeOne[[]map[string]any](t, f.must("", "user", "list", "--json"))
	if got[1]["username"] != "bob" || got[1]["disabled"] != true || got[0]["disabled"] != false {
		t.Errorf("after disabling bob: %v", got)
	}

	text := f.must("", "user", "list")
	for _, want := range []string{"USERNAME", "alice", "bob", "admin,ops"} {
		if !strings.Contains(text, want) {
			t.Errorf("text list lacks %q:\n%s", want, text)
		}
	}
	_, _, err := f.run("", "user", "list", "extra")
	wantUsageError(t, err)
}

func TestUserPasswd(t *testing.T) {
	f := newFixture(t)
	f.addUser("alice", "old-password")
	before := f.user("alice")

	out := f.must("new-password\r\n", append([]string{"user", "passwd", "alice", "--password-stdin"}, cheapArgon...)...)
	if strings.Contains(out, "password:") || strings.Contains(out, "new-password") {
		t.Errorf("output shows the password: %q", out)
	}
	after := f.user("alice")
	if after.PasswordHash == before.PasswordHash {
		t.Fatal("the hash did not change")
	}
	if checkPassword(t, "old-password", after.PasswordHash) {
		t.Error("the old password still verifies")
	}
	if !checkPassword(t, "new-password", after.PasswordHash) {
		t.Error("the new password does not verify")
	}

	// By id, and flags before the name.
	f.must("third\n", append([]string{"user", "passwd", "--password-stdin"}, append(cheapArgon, after.ID)...)...)
	if !checkPassword(t, "third", f.user("alice").PasswordHash) {
		t.Error("passwd by id did not set the password")
	}

	t.Run("without --password-stdin", func(t *testing.T) {
		_, _, err := f.run("x\n", "user", "passwd", "alice")
		if ue := wantUsageError(t, err); !strings.Contains(ue.msg, "--password-stdin") {
			t.Errorf("message %q", ue.msg)
		}
		if !checkPassword(t, "third", f.user("alice").PasswordHash) {
			t.Error("the password changed")
		}
	})
	t.Run("empty stdin", func(t *testing.T) {
		_, _, err := f.run("", append([]string{"user", "passwd", "alice", "--password-stdin"}, cheapArgon...)...)
		wantCode(t, err, tokend.EINVALID)
	})
	t.Run("empty line", func(t *testing.T) {
		_, _, err := f.run("\n", append([]string{"user", "passwd", "alice", "--password-stdin"}, cheapArgon...)...)
		wantCode(t, err, tokend.EINVALID)
	})
	t.Run("unknown user", func(t *testing.T) {
		_, _, err := f.run("x\n", append([]string{"user", "passwd", "nobody", "--password-stdin"}, cheapArgon...)...)
		wantCode(t, err, tokend.ENOTFOUND)
		if !strings.Contains(describe(err), "nobody") {
			t.Errorf("message %q does not name the user", describe(err))
		}
	})
}

// The argon2 parameters of `user passwd` are not validated, unlike those of
// `user add`.
func TestUserPasswdValidatesArgonParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"weak memory", []string{"--argon2-memory", "512", "--argon2-time", "1"}},
		{"zero time", []string{"--argon2-memory", "1024", "--argon2-time", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.addUser("alice", "old")
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("user passwd panicked: %v", p)
					}
				}()
				_, _, err = f.run("new\n", append([]string{"user", "passwd", "alice", "--password-stdin"}, tc.args...)...)
			}()
			wantUsageError(t, err)
			if !checkPassword(t, "old", f.user("alice").PasswordHash) {
				t.Error("the password changed")
			}
		})
	}
}

func TestUserDisable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addUser("alice", "pw")
	f.addUser("bob", "pw")
	alice, bob := f.user("alice"), f.user("bob")
	now := time.Now()
	newSession := func(userID string) string {
		t.Helper()
		s := &tokend.Session{ID: uuid.Must(uuid.NewV7()).String(), UserID: userID, Dialect: "oauth",
			RotatedAt: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := f.store().CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	a1, a2, b1 := newSession(alice.ID), newSession(alice.ID), newSession(bob.ID)

	out := f.must("", "user", "disable", "alice")
	if !strings.Contains(out, "alice") {
		t.Errorf("output %q", out)
	}
	if !f.user("alice").Disabled || f.user("bob").Disabled {
		t.Error("disable did not touch exactly alice")
	}
	for _, id := range []string{a1, a2} {
		s, err := f.store().SessionByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Live(time.Now()) {
			t.Errorf("alice's session %s is still live", id)
		}
	}
	if s, err := f.store().SessionByID(ctx, b1); err != nil || !s.Live(time.Now()) {
		t.Errorf("bob's session was touched: %+v, %v", s, err)
	}

	// Disabling again is harmless; an unknown user is an error naming it.
	f.must("", "user", "disable", "alice")
	_, _, err := f.run("", "user", "disable", "ghost")
	wantCode(t, err, tokend.ENOTFOUND)
	if !strings.Contains(describe(err), "ghost") {
		t.Errorf("message %q does not name the user", describe(err))
	}
	_, _, err = f.run("", "user", "disable")
	wantUsageError(t, err)
}
