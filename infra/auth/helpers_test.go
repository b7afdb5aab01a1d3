package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"testing"
)

// signedHS256 signs payload by hand, so tests can make tokens Mint refuses.
func signedHS256(t *testing.T, secret []byte, payload string) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	head := b64([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + b64([]byte(payload))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(head))
	return head + "." + b64(m.Sum(nil))
}
