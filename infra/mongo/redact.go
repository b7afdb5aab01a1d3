package mongo

import (
	"errors"
	"net/url"
	"slices"
	"strings"
)

// Redacted replaces secrets in what [RedactURI] and [Connect] return.
const Redacted = "REDACTED"

// RedactURI returns uri with its password, and the values of options that
// are secrets (tlsCertificateKeyFilePassword), replaced by [Redacted], for
// logs and messages.
func RedactURI(uri string) string {
	secrets, _ := uriSecrets(uri)
	return redact(uri, secrets)
}

// uriSecrets returns the parts of uri that must never be shown: the
// password of its user info as written and unescaped, the pieces an
// unescaped @, / or : splits it into (which the driver's parse errors may
// quote), and the values of secret options. It returns an error when the
// password is not validly percent-encoded: the driver's error would quote
// a piece of it.
func uriSecrets(uri string) ([]string, error) {
	rest := uri
	if _, after, ok := strings.Cut(uri, "://"); ok {
		rest = after
	}
	var secrets []string
	var errs []error
	query := ""
	if i := strings.LastIndex(rest, "?"); i >= 0 {
		query = rest[i+1:]
	}
	authority := strings.TrimSuffix(rest, "?"+query)
	// The driver takes the user info up to the first @; a password with an
	// unescaped @ reaches up to the last one.
	for _, at := range []int{strings.Index(authority, "@"), strings.LastIndex(authority, "@")} {
		if at < 0 {
			continue
		}
		_, pw, ok := strings.Cut(authority[:at], ":")
		if !ok || pw == "" {
			continue
		}
		secrets = append(secrets, pw)
		if u, err := url.PathUnescape(pw); err != nil {
			errs = append(errs, errors.New("the password in the URI is not percent-encoded (a % must be followed by two hex digits)"))
		} else {
			secrets = append(secrets, u)
		}
		secrets = append(secrets, strings.FieldsFunc(pw, func(r rune) bool { return strings.ContainsRune("@/:,", r) })...)
	}
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		for _, p := range []string{"tlsCertificateKeyFilePassword", "sslClientCertificateKeyPassword"} {
			if strings.EqualFold(k, p) && v != "" {
				secrets = append(secrets, v)
				if u, err := url.QueryUnescape(v); err == nil {
					secrets = append(secrets, u)
				}
			}
		}
	}
	if len(errs) > 0 {
		return secrets, errs[0]
	}
	return secrets, nil
}

// redact replaces every secret in s, longest first (a piece of a password
// must not leave the rest of it behind).
func redact(s string, secrets []string) string {
	sorted := slices.Clone(secrets)
	slices.SortFunc(sorted, func(a, b string) int { return len(b) - len(a) })
	for _, sec := range sorted {
		if sec != "" && sec != Redacted {
			s = strings.ReplaceAll(s, sec, Redacted)
		}
	}
	return s
}

// redactedError is an error whose message has its secrets replaced.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactError returns err with secrets replaced in its message; errors.Is
// and errors.As still see err.
func redactError(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := redact(err.Error(), secrets)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
