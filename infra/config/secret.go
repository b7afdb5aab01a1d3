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
// information of each (user:password@) replaced by [Redacted], and the
// values of query options that hold secrets (a password, a token, a key,
// MongoDB's authMechanismProperties), for logs, messages and -h.
//
// Everything before the last '@' of each URL's authority, up to its scheme
// (or the start, for a URL without one), is user information: a password
// holding '/', '?', ',', '@' or even "://" unescaped is redacted too, at
// the price of redacting more than needed when a query holds an '@'.
func RedactURL(s string) string {
	var b strings.Builder
	for _, seg := range urlSegments(s) {
		if at := strings.LastIndex(seg, "@"); at >= 0 {
			b.WriteString(Redacted)
			seg = seg[at:]
		}
		b.WriteString(redactQuery(seg))
	}
	return b.String()
}

// urlSegments splits s after each scheme ("nats://", "mongodb+srv://"):
// the first segment is the text up to and including the first scheme, each
// next one runs to the next scheme. A "://" counts as a scheme's end only
// after a scheme name at the start of s or after a comma, so one inside a
// password does not.
func urlSegments(s string) []string {
	var out []string
	last := 0
	for i := 0; i+3 <= len(s); i++ {
		if s[i:i+3] != "://" {
			continue
		}
		start := strings.LastIndexByte(s[:i], ',') + 1
		if start < last || !schemeName(s[start:i]) {
			continue
		}
		out = append(out, s[last:i+3])
		last = i + 3
		i += 2
	}
	return append(out, s[last:])
}

// schemeName reports whether s is a URL scheme: a letter, then letters,
// digits, '+', '-' or '.'.
func schemeName(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// secretOption matches the query options whose values are secrets.
func secretOption(key string) bool {
	k := strings.ToLower(key)
	for _, w := range []string{"pass", "secret", "token", "key", "authmechanismproperties", "credential"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// redactQuery replaces the values of the secret options of seg's query.
func redactQuery(seg string) string {
	q := strings.IndexByte(seg, '?')
	if q < 0 {
		return seg
	}
	end := len(seg)
	if c := strings.IndexByte(seg[q:], ','); c >= 0 { // a next NATS URL without a scheme
		end = q + c
	}
	opts := strings.Split(seg[q+1:end], "&")
	for i, o := range opts {
		if k, _, ok := strings.Cut(o, "="); ok && secretOption(k) {
			opts[i] = k + "=" + Redacted
		}
	}
	return seg[:q+1] + strings.Join(opts, "&") + seg[end:]
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
