package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evflow/evflow/infra/auth"
)

// TestTokenCommandMakesTokensAReplicaAccepts checks that what evflow token
// prints verifies: a keys-file entry for its token, a JWT for the secret.
func TestTokenCommandMakesTokensAReplicaAccepts(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"token", "new", "--name", "ci", "--tenant", "acme", "--roles", "publisher,reader", "--expires", "2099-01-01T00:00:00Z"}
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], auth.TokenPrefix) {
		t.Fatalf("output %q: want the token, then its entry", out.String())
	}
	tok, entry := lines[0], lines[1]
	if strings.Contains(entry, tok) {
		t.Fatal("the keys-file entry holds the token itself")
	}
	var key auth.Key
	if err := json.Unmarshal([]byte(entry), &key); err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeys([]auth.Key{key})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := auth.NewVerifier(keys, nil)
	p, err := v.Verify(tok)
	if err != nil || p.Name != "ci" || p.Tenant != "acme" || !p.Can(auth.Publisher) || p.Expires.Year() != 2099 {
		t.Fatalf("Verify = %+v, %v", p, err)
	}

	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("z", auth.MinSecret)), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	args = []string{"token", "jwt", "--secret-file", secret, "--name", "dash", "--tenant", "acme", "--roles", "reader", "--ttl", "1h"}
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	j, _ := auth.LoadJWT(secret)
	v, _ = auth.NewVerifier(nil, j)
	if p, err := v.Verify(strings.TrimSpace(out.String())); err != nil || p.Name != "dash" || !p.Can(auth.Reader) {
		t.Fatalf("Verify(JWT) = %+v, %v", p, err)
	}
}

// TestAdminKeyOutsideTheAdminOrgIsRefused: serve refuses a keys file that
// gives the admin role, which sees every tenant's dead letters, to a
// tenant's token.
func TestAdminKeyOutsideTheAdminOrgIsRefused(t *testing.T) {
	tok, _ := auth.NewToken()
	raw, _ := json.Marshal(map[string]any{"keys": []auth.Key{{Name: "acme-ops", TokenSHA256: auth.Digest(tok), Tenant: "acme", Roles: []auth.Role{auth.Admin}}}})
	keys := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(keys, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"serve", "--auth-keys", keys}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--auth-keys") || !strings.Contains(errOut.String(), "admin organization") {
		t.Fatalf("exit %d, stderr %q: want 2 naming --auth-keys and the admin organization", code, errOut.String())
	}
}
