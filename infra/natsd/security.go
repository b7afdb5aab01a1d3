package natsd

import (
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Auth is how clients authenticate to the server: with a user and its
// password, or as the user of an nkey (signing the server's challenge with
// the nkey's seed), never both. The zero Auth lets every client in.
type Auth struct {
	// User and Password are the one user's credentials; both or neither.
	User, Password string
	// NKey is the public key (U…) of the one user authenticating by nkey.
	NKey string
}

// Enabled reports whether a is set.
func (a Auth) Enabled() bool { return a != Auth{} }

func (a Auth) validate() []error {
	var errs []error
	if (a.User == "") != (a.Password == "") {
		errs = append(errs, errors.New("Auth.User and Auth.Password go together"))
	}
	if a.NKey != "" && a.User != "" {
		errs = append(errs, errors.New("Auth.NKey and Auth.User exclude each other: one way to authenticate"))
	}
	if a.NKey != "" && !nkeys.IsValidPublicUserKey(a.NKey) {
		// The key is public, but a seed given here by mistake is not: never echo it.
		errs = append(errs, errors.New("Auth.NKey is not a user's public nkey (U…)"))
	}
	return errs
}

// TLS makes the server serve TLS to clients, and refuse clients that do not
// use it. With CAFile, it also requires every client to present a
// certificate signed by that CA (mutual TLS). The zero TLS serves plain TCP.
type TLS struct {
	// CertFile and KeyFile are the server's certificate (PEM, with its
	// chain) and private key; both or neither.
	CertFile, KeyFile string
	// CAFile, optional, holds the CA certificates client certificates are
	// verified with; it requires CertFile.
	CAFile string
}

// Enabled reports whether t is set.
func (t TLS) Enabled() bool { return t != TLS{} }

func (t TLS) validate() []error {
	var errs []error
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("TLS.CertFile and TLS.KeyFile go together"))
	}
	if t.CAFile != "" && t.CertFile == "" {
		errs = append(errs, errors.New("TLS.CAFile verifies clients of a TLS server: it needs TLS.CertFile and TLS.KeyFile"))
	}
	for _, f := range []struct{ name, path string }{{"TLS.CertFile", t.CertFile}, {"TLS.KeyFile", t.KeyFile}, {"TLS.CAFile", t.CAFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	return errs
}

// secure applies c's Auth and TLS to opts.
func (c *Config) secure(opts *server.Options) error {
	switch {
	case c.Auth.User != "":
		opts.Username, opts.Password = c.Auth.User, c.Auth.Password
	case c.Auth.NKey != "":
		opts.Nkeys = []*server.NkeyUser{{Nkey: c.Auth.NKey}}
	}
	if !c.TLS.Enabled() {
		return nil
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, CaFile: c.TLS.CAFile, Verify: c.TLS.CAFile != "",
	})
	if err != nil {
		return fmt.Errorf("natsd: TLS: %w", err)
	}
	opts.TLSConfig, opts.TLS, opts.TLSVerify = tc, true, c.TLS.CAFile != ""
	opts.TLSCert, opts.TLSKey, opts.TLSCaCert = c.TLS.CertFile, c.TLS.KeyFile, c.TLS.CAFile
	return nil
}
