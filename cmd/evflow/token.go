package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/evflow/evflow/infra/auth"
)

const tokenUsage = `Usage:
  evflow token new --name NAME --tenant ORG --roles publisher,reader,admin [--expires TIME]
      print a fresh random token, then its keys-file entry (which holds only its digest)
  evflow token jwt --secret-file FILE --name NAME --tenant ORG --roles ROLES [--ttl 24h]
      print a JWT signed with the secret a replica's --auth-jwt-secret-file holds
`

// token makes API tokens (see infra/auth).
func token(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "new" && args[0] != "jwt") {
		fmt.Fprint(stderr, tokenUsage)
		return usageError{errors.New("name what to make: new or jwt")}
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "name of the token, shown in logs and rate limits")
	tenant := fs.String("tenant", "", "organization the token acts for")
	roles := fs.String("roles", "", "comma-separated roles: publisher, reader, admin")
	expires := fs.String("expires", "", "new: when the token stops being valid (RFC 3339); empty for never")
	secretFile := fs.String("secret-file", "", "jwt: file holding the HMAC secret")
	ttl := fs.Duration("ttl", 24*time.Hour, "jwt: how long the token is valid")
	if err := fs.Parse(args[1:]); err != nil {
		return usageErr(err)
	}
	rs, err := auth.ParseRoles(*roles)
	if err != nil {
		return usageError{fmt.Errorf("--roles: %w", err)}
	}
	p := auth.Principal{Name: *name, Tenant: *tenant, Roles: rs}
	if args[0] == "jwt" {
		if *secretFile == "" {
			return usageError{errors.New("--secret-file is required")}
		}
		j, err := auth.LoadJWT(*secretFile)
		if err != nil {
			return usageError{fmt.Errorf("--secret-file: %w", err)}
		}
		tok, err := j.Mint(p, *ttl, time.Now())
		if err != nil {
			return usageError{err}
		}
		fmt.Fprintln(stdout, tok)
		return nil
	}
	key := auth.Key{Name: *name, Tenant: *tenant, Roles: rs}
	if *expires != "" {
		at, err := time.Parse(time.RFC3339, *expires)
		if err != nil {
			return usageError{fmt.Errorf("--expires: %q is not an RFC 3339 time", *expires)}
		}
		key.Expires = &at
	}
	tok, err := auth.NewToken()
	if err != nil {
		return err
	}
	key.TokenSHA256 = auth.Digest(tok)
	if _, err := auth.NewKeys([]auth.Key{key}); err != nil {
		return usageError{err}
	}
	entry, _ := json.Marshal(key)
	fmt.Fprintf(stdout, "%s\n%s\n", tok, entry)
	return nil
}
