package auth

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKeysFile(t *testing.T) {
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	old, _ := NewToken()
	path := writeFile(t, `{"keys":[
		{"name":"ci","token_sha256":"`+Digest(tok)+`","tenant":"acme","roles":["publisher","reader"]},
		{"name":"old","token_sha256":"`+Digest(old)+`","tenant":"acme","roles":["reader"],"expires":"2020-01-01T00:00:00Z"}]}`)
	keys, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "ci" || p.Tenant != "acme" || !p.Can(Publisher) || !p.Can(Reader) || p.Can(Admin) {
		t.Fatalf("principal %+v", p)
	}
	for _, c := range []struct {
		token string
		want  error
	}{
		{"", ErrMissing},
		{"evf_nope", ErrInvalid},
		{tok + "x", ErrInvalid},
		{old, ErrExpired},
	} {
		_, err := v.Verify(c.token)
		if !errors.Is(err, c.want) {
			t.Errorf("Verify(%q) = %v, want %v", c.token, err, c.want)
		}
		if c.token != "" && err != nil && strings.Contains(err.Error(), c.token) {
			t.Errorf("error %q contains the token", err)
		}
	}
}

func TestKeysFileRefusesBadEntries(t *testing.T) {
	d := Digest("t")
	for name, c := range map[string]struct{ body, want string }{
		"not json":      {`{`, "keys file"},
		"unknown field": {`{"keys":[],"x":1}`, "unknown field"},
		"empty":         {`{"keys":[]}`, "no keys"},
		"no name":       {`{"keys":[{"token_sha256":"` + d + `","tenant":"a","roles":["reader"]}]}`, "name is required"},
		"bad tenant":    {`{"keys":[{"name":"n","token_sha256":"` + d + `","tenant":"a b","roles":["reader"]}]}`, "tenant"},
		"no roles":      {`{"keys":[{"name":"n","token_sha256":"` + d + `","tenant":"a","roles":[]}]}`, "role"},
		"bad role":      {`{"keys":[{"name":"n","token_sha256":"` + d + `","tenant":"a","roles":["root"]}]}`, `role "root"`},
		"bad digest":    {`{"keys":[{"name":"n","token_sha256":"abc","tenant":"a","roles":["reader"]}]}`, "64 hex digits"},
		"dup name": {`{"keys":[{"name":"n","token_sha256":"` + d + `","tenant":"a","roles":["reader"]},` +
			`{"name":"n","token_sha256":"` + Digest("u") + `","tenant":"a","roles":["reader"]}]}`, "used twice"},
		"dup token": {`{"keys":[{"name":"n","token_sha256":"` + d + `","tenant":"a","roles":["reader"]},` +
			`{"name":"m","token_sha256":"` + d + `","tenant":"a","roles":["reader"]}]}`, "listed twice"},
	} {
		_, err := LoadKeys(writeFile(t, c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
	if _, err := LoadKeys(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing keys file loaded")
	}
}

func TestJWT(t *testing.T) {
	secret := []byte(strings.Repeat("s", MinSecret))
	j, err := NewJWT(secret)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewVerifier(nil, j)
	now := time.Now()
	p := Principal{Name: "dash", Tenant: "acme", Roles: []Role{Reader}}
	tok, err := j.Mint(p, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "dash" || got.Tenant != "acme" || !got.Can(Reader) || got.Can(Publisher) {
		t.Fatalf("principal %+v", got)
	}

	expired, _ := j.Mint(p, time.Minute, now.Add(-time.Hour))
	other, _ := NewJWT([]byte(strings.Repeat("o", MinSecret)))
	forged, _ := other.Mint(p, time.Hour, now)
	// alg "none" and no expiry, hand-made.
	b64 := base64.RawURLEncoding.EncodeToString
	none := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"x","org":"acme","roles":["admin"],"exp":9999999999}`)) + "."
	noExp := signedHS256(t, secret, `{"sub":"x","org":"acme","roles":["admin"]}`)
	badOrg := signedHS256(t, secret, `{"sub":"x","org":"a b","roles":["admin"],"exp":9999999999}`)
	for name, c := range map[string]struct {
		token string
		want  error
	}{
		"expired":       {expired, ErrExpired},
		"other secret":  {forged, ErrInvalid},
		"alg none":      {none, ErrInvalid},
		"no exp":        {noExp, ErrInvalid},
		"bad org claim": {badOrg, ErrInvalid},
		"garbage":       {"a.b.c", ErrInvalid},
	} {
		_, err := v.Verify(c.token)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), c.token) {
			t.Errorf("%s: error contains the token", name)
		}
	}
	if _, err := NewJWT([]byte("short")); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
	if _, err := j.Mint(Principal{Name: "x", Tenant: "acme"}, time.Hour, now); err == nil {
		t.Error("minted a token without roles")
	}
}

func TestAdminRoleOnlyInTheAdminOrg(t *testing.T) {
	tok, _ := NewToken()
	keys, err := NewKeys([]Key{{Name: "acme-ops", TokenSHA256: Digest(tok), Tenant: "acme", Roles: []Role{Admin}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier(keys, nil); err == nil || !strings.Contains(err.Error(), `"acme-ops"`) {
		t.Errorf("an admin key of acme: %v, want it refused by name", err)
	}
	v, err := NewVerifier(keys, nil, WithAdminOrg("acme"))
	if err != nil {
		t.Fatalf("with --admin-org acme: %v", err)
	}
	if p, err := v.Verify(tok); err != nil || !p.Can(Admin) {
		t.Errorf("Verify = %+v, %v", p, err)
	}
	j, _ := NewJWT([]byte(strings.Repeat("s", MinSecret)))
	v, _ = NewVerifier(nil, j)
	admin, _ := j.Mint(Principal{Name: "x", Tenant: "acme", Roles: []Role{Admin}}, time.Hour, time.Now())
	if _, err := v.Verify(admin); !errors.Is(err, ErrInvalid) {
		t.Errorf("an admin JWT of acme: %v, want ErrInvalid", err)
	}
	ops, _ := j.Mint(Principal{Name: "x", Tenant: DefaultAdminOrg, Roles: []Role{Admin}}, time.Hour, time.Now())
	if p, err := v.Verify(ops); err != nil || !p.Can(Admin) {
		t.Errorf("an admin JWT of %s: %+v, %v", DefaultAdminOrg, p, err)
	}
}

func TestParseRoles(t *testing.T) {
	r, err := ParseRoles("reader, publisher,reader")
	if err != nil || len(r) != 2 || r[0] != Reader || r[1] != Publisher {
		t.Fatalf("ParseRoles = %v, %v", r, err)
	}
	if _, err := ParseRoles("reader,root"); err == nil || !strings.Contains(err.Error(), "root") {
		t.Fatalf("ParseRoles(root) = %v", err)
	}
}
