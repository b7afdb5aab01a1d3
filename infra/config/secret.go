package config

import "log/slog"

// Redacted is what a set [Secret] prints as.
const Redacted = "REDACTED"

// Secret is a password: it prints, logs and marshals as [Redacted] (as ""
// when unset), so that a configuration printed or logged by mistake shows
// none. [Secret.Reveal] returns the value, for the client that sends it.
type Secret string

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// String returns [Redacted], or "" when s is unset.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString is String, for %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue is String, for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText is String, for encoding/json and the like.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Set implements flag.Value.
func (s *Secret) Set(v string) error {
	*s = Secret(v)
	return nil
}
