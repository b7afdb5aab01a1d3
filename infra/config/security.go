package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

// Security holds the credentials and TLS settings of evflow's connections
// to NATS and Redis. MongoDB's come in [Config.MongoURI]
// (mongodb://user:pass@host/?tls=true&tlsCAFile=…), which the driver reads.
//
// Passwords are [Secret]s, never printed. Give them in the environment
// (EVFLOW_NATS_PASSWORD, EVFLOW_REDIS_PASSWORD, …) or, for NATS, as an nkey
// seed or a credentials file rather than as flags: the command line of a
// process is visible to every user of the machine (ps).
type Security struct {
	// NATSUser and NATSPassword authenticate to NATS; with the embedded
	// server they are also the one user it accepts.
	NATSUser     string
	NATSPassword Secret
	// NATSNKey is a file holding a user nkey's seed (SU…), which signs
	// the server's challenge; with the embedded server, the user of its
	// public key is the one it accepts. It excludes NATSUser.
	NATSNKey string
	// NATSCreds is a credentials file (a user JWT and its nkey seed, as nsc
	// writes them), for an external server run in operator mode.
	NATSCreds string
	// NATSCA is the CA certificate file (PEM) the NATS server's certificate
	// is verified with (the system's CAs when empty). With the embedded
	// server it also makes the server require client certificates signed
	// by it (mutual TLS), so NATSClientCert is then required.
	NATSCA string
	// NATSTLSCert and NATSTLSKey are the embedded server's certificate and
	// key: it then serves TLS and requires it.
	NATSTLSCert, NATSTLSKey string
	// NATSClientCert and NATSClientKey are the certificate and key evflow
	// presents to a NATS server requiring client certificates.
	NATSClientCert, NATSClientKey string

	// RedisUsername (an ACL user; the default user when empty) and
	// RedisPassword authenticate to the Redis server, --redis-addr or the
	// primary the Sentinels name.
	RedisUsername string
	RedisPassword Secret
	// RedisSentinelPassword authenticates to the Sentinels themselves (their
	// requirepass); none when empty.
	RedisSentinelPassword Secret
	// RedisTLS connects to Redis (and to the Sentinels) with TLS, verifying
	// the server with RedisCA, or the system's CAs when RedisCA is empty.
	// RedisCA implies RedisTLS.
	RedisTLS bool
	RedisCA  string
}

// SecurityFlags registers the flags of [Security] that clients of running
// replicas' servers need (all but the embedded server's certificate), with
// defaults from the environment.
func (c *Config) SecurityFlags(fs *flag.FlagSet) {
	str, _ := c.envVars(fs)
	secret := func(p *Secret, name, usage string) {
		*p = Secret(env(name, p.Reveal()))
		fs.Var(p, name, usage+"; prefer the environment variable "+EnvName(name)+" to the flag, which any user sees in ps")
	}
	str(&c.NATSUser, "nats-user", "NATS user (with --nats-password); with the embedded server, the one user it accepts")
	secret(&c.NATSPassword, "nats-password", "NATS `password` of --nats-user")
	str(&c.NATSNKey, "nats-nkey", "file holding a NATS user nkey seed (SU…) to authenticate with; with the embedded server, the one user it accepts")
	str(&c.NATSCreds, "nats-creds", "NATS credentials file (user JWT and seed) for an external server (--nats-url)")
	str(&c.NATSCA, "nats-ca", "CA certificate (PEM) verifying the NATS server; with the embedded server it also requires client certificates signed by it")
	str(&c.NATSClientCert, "nats-client-cert", "certificate (PEM) evflow presents to a NATS server that verifies clients (with --nats-client-key)")
	str(&c.NATSClientKey, "nats-client-key", "private key (PEM) of --nats-client-cert")
	str(&c.RedisUsername, "redis-username", "Redis ACL user (with --redis-password; the default user when empty)")
	secret(&c.RedisPassword, "redis-password", "Redis `password` (AUTH), of the server or the primary the Sentinels name")
	secret(&c.RedisSentinelPassword, "redis-sentinel-password", "`password` of the Redis Sentinels themselves (their requirepass)")
	fs.BoolVar(&c.RedisTLS, "redis-tls", c.envBool("redis-tls", c.RedisTLS), "connect to Redis and its Sentinels with TLS (env "+EnvName("redis-tls")+")")
	str(&c.RedisCA, "redis-ca", "CA certificate (PEM) verifying the Redis servers; implies --redis-tls")
}

// serverSecurityFlags registers the embedded server's certificate.
func (c *Config) serverSecurityFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.NATSTLSCert, "nats-tls-cert", env("nats-tls-cert", c.NATSTLSCert), "certificate (PEM) of the embedded nats-server, which then requires TLS (with --nats-tls-key) (env "+EnvName("nats-tls-cert")+")")
	fs.StringVar(&c.NATSTLSKey, "nats-tls-key", env("nats-tls-key", c.NATSTLSKey), "private key (PEM) of --nats-tls-cert (env "+EnvName("nats-tls-key")+")")
}

// ValidateSecurity names the flag of every invalid security setting, and
// of every environment variable read by [Config.SecurityFlags] that did
// not parse, for commands that register only those. It never shows a
// secret's value.
func (c Config) ValidateSecurity() error {
	errs := append([]error(nil), c.envErrs...)
	c.validateSecurity(func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	})
	return errors.Join(errs...)
}

func (c Config) validateSecurity(bad func(flag, format string, args ...any)) {
	embedded := c.NATSURL == ""
	if c.Bus == BusKafka && (c.NATSUser != "" || c.NATSNKey != "" || c.NATSCreds != "" || c.NATSCA != "" || c.NATSTLSCert != "" || c.NATSClientCert != "") {
		bad("bus", "kafka runs without NATS: drop the --nats-* security flags")
	}
	if c.NATSUser != "" && c.NATSPassword == "" {
		bad("nats-user", "needs --nats-password (or %s)", EnvName("nats-password"))
	}
	if c.NATSPassword != "" && c.NATSUser == "" {
		bad("nats-password", "needs --nats-user")
	}
	if c.NATSNKey != "" && c.NATSUser != "" {
		bad("nats-nkey", "excludes --nats-user: authenticate one way")
	}
	if c.NATSCreds != "" && (c.NATSUser != "" || c.NATSNKey != "") {
		bad("nats-creds", "excludes --nats-user and --nats-nkey: authenticate one way")
	}
	if c.NATSCreds != "" && embedded {
		bad("nats-creds", "is for an external server (--nats-url); the embedded one takes --nats-user/--nats-password or --nats-nkey")
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		bad("nats-tls-cert", "and --nats-tls-key go together")
	}
	if c.NATSTLSCert != "" && !embedded {
		bad("nats-tls-cert", "is the embedded server's certificate; with --nats-url give the server's CA with --nats-ca")
	}
	if (c.NATSClientCert == "") != (c.NATSClientKey == "") {
		bad("nats-client-cert", "and --nats-client-key go together")
	}
	if embedded && c.NATSCA != "" {
		if c.NATSTLSCert == "" {
			bad("nats-ca", "with the embedded server verifies its TLS clients: it needs --nats-tls-cert and --nats-tls-key")
		} else if c.NATSClientCert == "" {
			bad("nats-client-cert", "is required with --nats-ca on the embedded server, which then verifies client certificates, evflow's own too")
		}
	}
	external := c.RedisAddr != "" || c.RedisSentinels != ""
	if !external && (c.RedisUsername != "" || c.RedisPassword != "" || c.RedisTLS || c.RedisCA != "") {
		bad("redis-password", "--redis-username, --redis-password, --redis-tls and --redis-ca need --redis-addr or --redis-sentinels (the embedded Redis has none)")
	}
	if c.RedisUsername != "" && c.RedisPassword == "" {
		bad("redis-username", "needs --redis-password (or %s)", EnvName("redis-password"))
	}
	if c.RedisSentinelPassword != "" && c.RedisSentinels == "" {
		bad("redis-sentinel-password", "needs --redis-sentinels")
	}
	for _, f := range []struct{ flag, path string }{
		{"nats-nkey", c.NATSNKey}, {"nats-creds", c.NATSCreds}, {"nats-ca", c.NATSCA},
		{"nats-tls-cert", c.NATSTLSCert}, {"nats-tls-key", c.NATSTLSKey},
		{"nats-client-cert", c.NATSClientCert}, {"nats-client-key", c.NATSClientKey}, {"redis-ca", c.RedisCA},
	} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			bad(f.flag, "%v", err)
		} else if st.IsDir() {
			bad(f.flag, "%s is a directory, not a file", f.path)
		}
	}
}
