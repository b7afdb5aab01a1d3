package auth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecret is the shortest JWT secret accepted, in bytes.
const MinSecret = 32

// JWT verifies and mints HMAC-SHA256 (HS256) JWTs. Their claims:
//
//	{"sub": "acme-ci", "org": "acme", "roles": ["publisher"], "exp": 1798761600}
//
// sub names the token, org is its tenant; exp is required.
type JWT struct {
	secret []byte
}

// claims are the JWT claims evflow reads.
type claims struct {
	jwt.RegisteredClaims
	Org   string `json:"org"`
	Roles []Role `json:"roles"`
}

// NewJWT returns a JWT verifier and minter with secret, at least
// [MinSecret] bytes.
func NewJWT(secret []byte) (*JWT, error) {
	if len(secret) < MinSecret {
		return nil, fmt.Errorf("JWT secret: %d bytes, at least %d are required", len(secret), MinSecret)
	}
	return &JWT{secret: secret}, nil
}

// LoadJWT reads the secret from path (surrounding white space dropped).
func LoadJWT(path string) (*JWT, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("JWT secret file: %w", err)
	}
	j, err := NewJWT(bytes.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return j, nil
}

// Mint signs a token for p that expires after ttl.
func (j *JWT) Mint(p Principal, ttl time.Duration, now time.Time) (string, error) {
	if err := p.check(); err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	if ttl <= 0 {
		return "", errors.New("mint: the time to live must be positive")
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   p.Name,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Org: p.Tenant, Roles: p.Roles,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(j.secret)
	if err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	return s, nil
}

// verify checks token's signature, expiry and claims at now.
func (j *JWT) verify(token string, now time.Time) (Principal, error) {
	var c claims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
	_, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return j.secret, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Principal{}, fmt.Errorf("JWT of %q: %w", c.Subject, ErrExpired)
	case err != nil:
		// jwt's errors name the failed check, never the token.
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	pr := Principal{Name: c.Subject, Tenant: c.Org, Roles: c.Roles, Expires: c.ExpiresAt.Time}
	if err := pr.check(); err != nil {
		return Principal{}, fmt.Errorf("%w: claims: %v", ErrInvalid, err)
	}
	return pr, nil
}
