package config

import (
	"flag"
	"log/slog"
	"strings"
)

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

// RedactURL returns the URLs in s (one, or a comma-separated list such as
// NATS takes, or a MongoDB URI with several hosts) with the user
// information of each (user:password@) replaced by [Redacted], for logs,
// messages and -h.
//
// Everything before the last '@' of each URL's authority, up to its
// scheme (or the start, for a URL without one), is user information: a
// password holding '/', '?', ',' or '@' unescaped is redacted too, at the
// price of redacting more than needed when a query holds an '@'.
func RedactURL(s string) string {
	parts := strings.Split(s, "://")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			parts[i] = Redacted + p[at:]
		}
	}
	return strings.Join(parts, "://")
}

// URLVar defines a flag holding URLs, its default taken from the
// environment, that -h prints with their credentials redacted.
func URLVar(fs *flag.FlagSet, p *string, name, usage string) {
	*p = env(name, *p)
	fs.Var(urlValue{p}, name, usage+" (env "+EnvName(name)+")")
}

// urlValue is a string flag holding URLs, printed by -h with their
// credentials redacted.
type urlValue struct{ p *string }

func (u urlValue) String() string {
	if u.p == nil {
		return ""
	}
	return RedactURL(*u.p)
}

func (u urlValue) Set(v string) error {
	*u.p = v
	return nil
}
