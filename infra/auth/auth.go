// Package auth authenticates the bearer tokens of evflow's HTTP API and
// says what their holder may do.
//
// A token belongs to one organization (its tenant) and carries roles:
//
//   - publisher: send commands and launches for the tenant's apps;
//   - reader: read the tenant's apps, releases and stats, and the apps
//     other organizations granted to it;
//   - admin: operate the replica (status, dead letters). Dead letters are
//     every tenant's events, so only tokens of the admin organization
//     ([DefaultAdminOrg], or [WithAdminOrg]) may hold this role.
//
// Tokens come from a keys file ([LoadKeys]: opaque random tokens, stored as
// SHA-256 digests) or are JWTs signed with HMAC-SHA256 ([NewJWT]); a
// [Verifier] accepts both.
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/evflow/evflow/events"
)

// Role is what a token may do.
type Role string

// The roles.
const (
	Publisher Role = "publisher"
	Reader    Role = "reader"
	Admin     Role = "admin"
)

// Roles lists every role.
func Roles() []Role { return []Role{Publisher, Reader, Admin} }

// ParseRoles parses a comma-separated list of roles.
func ParseRoles(s string) ([]Role, error) {
	var out []Role
	for _, r := range strings.Split(s, ",") {
		role := Role(strings.TrimSpace(r))
		if !slices.Contains(Roles(), role) {
			return nil, fmt.Errorf("role %q is not publisher, reader or admin", r)
		}
		if !slices.Contains(out, role) {
			out = append(out, role)
		}
	}
	return out, nil
}

// Errors of [Verifier.Verify]; the HTTP API answers each with 401.
var (
	ErrMissing = errors.New("no bearer token: send Authorization: Bearer <token>")
	ErrInvalid = errors.New("the bearer token is not valid")
	ErrExpired = errors.New("the bearer token has expired")
)

// Principal is the holder of a verified token.
type Principal struct {
	// Name identifies the token (its keys-file name or JWT subject) in
	// logs and rate limits; it is not secret.
	Name string
	// Tenant is the organization the token acts for.
	Tenant string
	// Roles are what the token may do.
	Roles []Role
	// Expires is when the token stops being valid; zero for never.
	Expires time.Time
}

// Can reports whether p holds role r.
func (p Principal) Can(r Role) bool { return slices.Contains(p.Roles, r) }

// check validates a principal read from a keys file or a JWT.
func (p Principal) check() error {
	if p.Name == "" {
		return errors.New("name is required")
	}
	if !events.ValidID(p.Tenant) {
		return fmt.Errorf("tenant %q must be 1-128 characters of [A-Za-z0-9_-]", p.Tenant)
	}
	if len(p.Roles) == 0 {
		return errors.New("at least one role is required")
	}
	for _, r := range p.Roles {
		if !slices.Contains(Roles(), r) {
			return fmt.Errorf("role %q is not publisher, reader or admin", r)
		}
	}
	return nil
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal ctx carries, and false when the request
// was not authenticated (the API runs open).
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// DefaultAdminOrg is the organization whose tokens may hold the admin role.
const DefaultAdminOrg = "operators"

// Verifier verifies tokens against a keys file, a JWT secret, or both.
type Verifier struct {
	keys     *Keys
	jwt      *JWT
	adminOrg string
	now      func() time.Time
}

// VerifierOption configures a [Verifier].
type VerifierOption func(*Verifier)

// WithAdminOrg sets the organization whose tokens may hold the admin role;
// the default is [DefaultAdminOrg].
func WithAdminOrg(org string) VerifierOption { return func(v *Verifier) { v.adminOrg = org } }

// NewVerifier returns a verifier of keys' tokens and jwt's JWTs; either may
// be nil, not both. A key granting the admin role to another organization
// than the admin one is refused.
func NewVerifier(keys *Keys, jwt *JWT, opts ...VerifierOption) (*Verifier, error) {
	if keys == nil && jwt == nil {
		return nil, errors.New("auth: a keys file or a JWT secret is required")
	}
	v := &Verifier{keys: keys, jwt: jwt, adminOrg: DefaultAdminOrg, now: time.Now}
	for _, o := range opts {
		o(v)
	}
	if !events.ValidID(v.adminOrg) {
		return nil, fmt.Errorf("auth: admin organization %q must be 1-128 characters of [A-Za-z0-9_-]", v.adminOrg)
	}
	if keys != nil {
		for _, p := range keys.byDigest {
			if err := v.checkAdmin(p); err != nil {
				return nil, fmt.Errorf("auth: key %q: %w", p.Name, err)
			}
		}
	}
	return v, nil
}

// checkAdmin refuses the admin role to tokens of other organizations than
// the admin one: it sees every tenant's dead letters.
func (v *Verifier) checkAdmin(p Principal) error {
	if p.Can(Admin) && p.Tenant != v.adminOrg {
		return fmt.Errorf("the admin role sees every tenant's dead letters: only tokens of the admin organization %q may hold it, not of %q", v.adminOrg, p.Tenant)
	}
	return nil
}

// Verify returns the principal of token, or an error wrapping [ErrMissing],
// [ErrInvalid] or [ErrExpired]. The error never contains the token.
func (v *Verifier) Verify(token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrMissing
	}
	if v.keys != nil {
		if p, ok := v.keys.lookup(token); ok {
			if !p.Expires.IsZero() && !v.now().Before(p.Expires) {
				return Principal{}, fmt.Errorf("token %q: %w", p.Name, ErrExpired)
			}
			return p, nil
		}
	}
	if v.jwt != nil && strings.Count(token, ".") == 2 {
		p, err := v.jwt.verify(token, v.now())
		if err == nil {
			if err = v.checkAdmin(p); err != nil {
				return Principal{}, fmt.Errorf("%w: JWT of %q: %v", ErrInvalid, p.Name, err)
			}
		}
		return p, err
	}
	return Principal{}, ErrInvalid
}
