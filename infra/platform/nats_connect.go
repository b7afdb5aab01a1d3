package platform

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/natsd"
)

// connectNATS connects to the NATS servers at url, named name, with the
// credentials and TLS settings of cfg; embedded says url is the replica's
// own embedded server. Errors name the flag at fault and never show a
// secret or the credentials of a URL.
func connectNATS(cfg config.Config, url, name string, embedded bool, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := natsOptions(cfg, embedded)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(append(opts, nats.Name(name)), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", config.RedactURL(url), err)
	}
	return nc, nil
}

// natsOptions are the options of evflow's NATS connections: the user and
// password, nkey or credentials file, and the TLS configuration cfg gives.
func natsOptions(cfg config.Config, embedded bool) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case cfg.NATSUser != "":
		opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword.Reveal()))
	case cfg.NATSNKey != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NATSNKey)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey %s: %w", cfg.NATSNKey, err)
		}
		opts = append(opts, o)
	case cfg.NATSCreds != "":
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	tc, err := natsTLS(cfg, embedded)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// natsTLS is the TLS configuration of evflow's NATS connections, nil when
// cfg asks for none (a server requiring TLS is then verified against the
// system's CAs). A connection to the replica's own embedded server pins
// that server's certificate instead of verifying its name: the server may
// listen on 0.0.0.0 under a certificate naming its public host.
func natsTLS(cfg config.Config, embedded bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case embedded && cfg.NATSTLSCert != "":
		own, err := tls.LoadX509KeyPair(cfg.NATSTLSCert, cfg.NATSTLSKey)
		if err != nil {
			return nil, fmt.Errorf("--nats-tls-cert/--nats-tls-key: %w", err)
		}
		pinned := own.Certificate[0]
		// Verification is VerifyConnection's: the exact certificate the
		// embedded server was given, whatever name it was dialled by.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, pinned) {
				return errors.New("the server's certificate is not the embedded server's (--nats-tls-cert)")
			}
			return nil
		}
	case cfg.NATSCA != "":
		pem, err := os.ReadFile(cfg.NATSCA)
		if err != nil {
			return nil, fmt.Errorf("--nats-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--nats-ca %s holds no PEM certificate", cfg.NATSCA)
		}
	case cfg.NATSClientCert == "":
		return nil, nil
	}
	if cfg.NATSClientCert != "" {
		c, err := tls.LoadX509KeyPair(cfg.NATSClientCert, cfg.NATSClientKey)
		if err != nil {
			return nil, fmt.Errorf("--nats-client-cert/--nats-client-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// natsdSecurity is the embedded server's Auth and TLS that cfg asks for:
// the user of --nats-user or of --nats-nkey's public key, and
// --nats-tls-cert with --nats-ca verifying clients.
func natsdSecurity(cfg config.Config) (natsd.Auth, natsd.TLS, error) {
	auth := natsd.Auth{User: cfg.NATSUser, Password: cfg.NATSPassword.Reveal()}
	if cfg.NATSNKey != "" {
		seed, err := os.ReadFile(cfg.NATSNKey)
		if err != nil {
			return natsd.Auth{}, natsd.TLS{}, fmt.Errorf("--nats-nkey: %w", err)
		}
		kp, err := nkeys.ParseDecoratedNKey(seed)
		clear(seed)
		if err != nil {
			return natsd.Auth{}, natsd.TLS{}, fmt.Errorf("--nats-nkey %s: %w", cfg.NATSNKey, err)
		}
		defer kp.Wipe()
		if _, err := kp.Seed(); err != nil {
			return natsd.Auth{}, natsd.TLS{}, fmt.Errorf("--nats-nkey %s: holds no seed (SU…): %w", cfg.NATSNKey, err)
		}
		if auth.NKey, err = kp.PublicKey(); err != nil {
			return natsd.Auth{}, natsd.TLS{}, fmt.Errorf("--nats-nkey %s: %w", cfg.NATSNKey, err)
		}
	}
	return auth, natsd.TLS{CertFile: cfg.NATSTLSCert, KeyFile: cfg.NATSTLSKey, CAFile: cfg.NATSCA}, nil
}
