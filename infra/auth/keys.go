package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// TokenPrefix starts every token [NewToken] makes, so a leaked one is easy
// to recognise (and to scan for).
const TokenPrefix = "evf_"

// Key is one entry of a keys file. The file holds no token, only its
// SHA-256 digest, so reading it does not reveal a usable token:
//
//	{"keys": [
//	  {"name": "acme-ci", "token_sha256": "9f86d0…", "tenant": "acme",
//	   "roles": ["publisher", "reader"], "expires": "2027-01-01T00:00:00Z"}
//	]}
type Key struct {
	// Name identifies the token in logs and rate limits; unique in the file.
	Name string `json:"name"`
	// TokenSHA256 is the hex SHA-256 digest of the token ([Digest]).
	TokenSHA256 string `json:"token_sha256"`
	// Tenant is the organization the token acts for.
	Tenant string `json:"tenant"`
	// Roles are what the token may do.
	Roles []Role `json:"roles"`
	// Expires is when the token stops being valid; omitted for never.
	Expires *time.Time `json:"expires,omitempty"`
}

// Keys are the tokens of a keys file, by digest.
type Keys struct {
	byDigest map[[sha256.Size]byte]Principal
}

// LoadKeys reads and checks a keys file (see [Key]).
func LoadKeys(path string) (*Keys, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys file: %w", err)
	}
	var file struct {
		Keys []Key `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("keys file %s: %w", path, err)
	}
	ks, err := NewKeys(file.Keys)
	if err != nil {
		return nil, fmt.Errorf("keys file %s: %w", path, err)
	}
	return ks, nil
}

// NewKeys checks keys and indexes them by digest.
func NewKeys(keys []Key) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	ks := &Keys{byDigest: make(map[[sha256.Size]byte]Principal, len(keys))}
	names := map[string]bool{}
	for i, k := range keys {
		p := Principal{Name: k.Name, Tenant: k.Tenant, Roles: k.Roles}
		if k.Expires != nil {
			p.Expires = *k.Expires
		}
		if err := p.check(); err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if names[k.Name] {
			return nil, fmt.Errorf("keys[%d]: name %q is used twice", i, k.Name)
		}
		names[k.Name] = true
		d, err := hex.DecodeString(k.TokenSHA256)
		if err != nil || len(d) != sha256.Size {
			return nil, fmt.Errorf("keys[%d] %q: token_sha256 must be 64 hex digits (evflow token new prints it)", i, k.Name)
		}
		var digest [sha256.Size]byte
		copy(digest[:], d)
		if _, dup := ks.byDigest[digest]; dup {
			return nil, fmt.Errorf("keys[%d] %q: the same token is listed twice", i, k.Name)
		}
		ks.byDigest[digest] = p
	}
	return ks, nil
}

func (ks *Keys) lookup(token string) (Principal, bool) {
	p, ok := ks.byDigest[sha256.Sum256([]byte(token))]
	return p, ok
}

// Digest is the hex SHA-256 digest of token, as a keys file lists it.
func Digest(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

// NewToken returns a fresh random token: [TokenPrefix] and 32 random bytes.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}
