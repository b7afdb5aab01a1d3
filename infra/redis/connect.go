package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// DefaultConnWriteTimeout is [ClientConfig.ConnWriteTimeout] when unset:
// how long a connection may stay unable to write, or unanswered by a
// server (periodic PINGs), before it is closed and its commands fail.
const DefaultConnWriteTimeout = 5 * time.Second

// DefaultMaxRetries is [ClientConfig.MaxRetries] when unset. rueidis
// retries read-only commands after a network error; left to itself it
// retries until the context ends, which without a deadline is never.
const DefaultMaxRetries = 3

// Retry backoff: 10ms, 20ms, 40ms, … up to maxRetryDelay.
const (
	baseRetryDelay = 5 * time.Millisecond
	maxRetryDelay  = 500 * time.Millisecond
)

// ClientConfig configures [Connect].
type ClientConfig struct {
	// Addr is the server's host:port; tests pass the address of a server
	// they stop and restart to inject faults. Required unless Sentinels is
	// set.
	Addr string
	// Sentinels are the host:port addresses of Redis Sentinels that
	// monitor MasterSet: the client writes to the primary they name and
	// follows their failovers (a replica promoted when the primary fails).
	// Replication is ordered, so a promoted replica holds a prefix of the
	// primary's writes, its checkpoints included: projections resume from
	// them, and a write the old primary had not replicated yet is applied
	// again from the stream.
	Sentinels []string
	MasterSet string
	// DB is the logical database (SELECT); 0 by default. Two evflow
	// deployments may share a Redis in different databases.
	DB int
	// ConnWriteTimeout: see [DefaultConnWriteTimeout].
	ConnWriteTimeout time.Duration
	// DialTimeout bounds each connection attempt; [rueidis.DefaultDialTimeout] when unset.
	DialTimeout time.Duration
	// MaxRetries is how often a read-only command is retried after a
	// network error: [DefaultMaxRetries] when 0, never when negative. Writes
	// (the store's scripts) are never retried by the client; the caller
	// retries the whole batch.
	MaxRetries int
	// DialCtxFn, when set, opens connections instead of a net.Dialer: a
	// seam for tests that cut connections. It is given the TLS
	// configuration to use, nil without TLS.
	DialCtxFn func(ctx context.Context, addr string, d *net.Dialer, cfg *tls.Config) (net.Conn, error)
	// Username (an ACL user; the default user when empty) and Password
	// authenticate to the server, or to the primary the Sentinels name.
	// Neither is ever part of an error.
	Username, Password string
	// SentinelPassword authenticates to the Sentinels themselves (their
	// requirepass); none when empty. It is separate from Password because
	// Sentinels commonly run without one while the data servers have one.
	SentinelPassword string
	// TLS connects to the server, or to the Sentinels and the servers they
	// name, with TLS. Certificates are verified against the system's CAs,
	// or against CAFile's (PEM) when set, which implies TLS; a server's
	// certificate must name the host or IP address it is reached at (with
	// Sentinel, the address the Sentinels announce).
	TLS    bool
	CAFile string
}

func (c *ClientConfig) setDefaults() {
	if c.ConnWriteTimeout == 0 {
		c.ConnWriteTimeout = DefaultConnWriteTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = rueidis.DefaultDialTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
}

// retryDelay is a [rueidis.RetryDelayFn] giving up after maxRetries
// retries (attempts counts the attempts made, from 1).
func retryDelay(maxRetries int) rueidis.RetryDelayFn {
	return func(attempts int, _ rueidis.Completed, _ error) time.Duration {
		if attempts > maxRetries {
			return -1
		}
		return min(baseRetryDelay<<min(attempts, 10), maxRetryDelay)
	}
}

// Validate reports what is wrong with the configuration, if anything.
func (c ClientConfig) Validate() error {
	var errs []error
	switch {
	case len(c.Sentinels) > 0:
		for _, a := range c.Sentinels {
			if _, _, err := net.SplitHostPort(a); err != nil {
				errs = append(errs, fmt.Errorf("redis client: sentinel %q must be host:port: %w", a, err))
			}
		}
		if c.MasterSet == "" {
			errs = append(errs, errors.New("redis client: MasterSet is required with Sentinels"))
		}
		if c.Addr != "" {
			errs = append(errs, errors.New("redis client: Addr and Sentinels exclude each other"))
		}
	default:
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("redis client: Addr %q must be host:port: %w", c.Addr, err))
		}
	}
	if c.ConnWriteTimeout < 0 {
		errs = append(errs, errors.New("redis client: ConnWriteTimeout must not be negative"))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, errors.New("redis client: DialTimeout must not be negative"))
	}
	if c.Username != "" && c.Password == "" {
		errs = append(errs, errors.New("redis client: Username needs a Password"))
	}
	if c.SentinelPassword != "" && len(c.Sentinels) == 0 {
		errs = append(errs, errors.New("redis client: SentinelPassword needs Sentinels"))
	}
	return errors.Join(errs...)
}

// Connect returns a client of the Redis server at cfg.Addr (rueidis finds
// out whether it is part of a cluster), once the server has answered a PING
// within ctx. Client-side caching is off: the
// store does not use it, and the embedded server has no client tracking.
// The caller closes the client; it reconnects by itself after a server restart.
func Connect(ctx context.Context, cfg ClientConfig) (rueidis.Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	opt := rueidis.ClientOption{
		InitAddress:      []string{cfg.Addr},
		Username:         cfg.Username,
		Password:         cfg.Password,
		TLSConfig:        tc,
		DisableCache:     true,
		ConnWriteTimeout: cfg.ConnWriteTimeout,
		Dialer:           net.Dialer{Timeout: cfg.DialTimeout},
		DialCtxFn:        cfg.DialCtxFn,
		DisableRetry:     cfg.MaxRetries < 0,
		RetryDelay:       retryDelay(cfg.MaxRetries),
		SelectDB:         cfg.DB,
	}
	where := cfg.Addr
	if len(cfg.Sentinels) > 0 {
		opt.InitAddress = cfg.Sentinels
		opt.Sentinel = rueidis.SentinelOption{
			MasterSet: cfg.MasterSet, Dialer: opt.Dialer, TopologyRefreshInterval: 5 * time.Second,
			Password: cfg.SentinelPassword, TLSConfig: tc,
		}
		where = fmt.Sprintf("primary %q of sentinels %s", cfg.MasterSet, strings.Join(cfg.Sentinels, ","))
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("connect to redis %s: %w", where, err)
	}
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, fmt.Errorf("connect to redis %s: ping: %w", where, err)
	}
	return client, nil
}

// tlsConfig is the TLS configuration cfg asks for, nil for none.
func (c ClientConfig) tlsConfig() (*tls.Config, error) {
	if !c.TLS && c.CAFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis client: CAFile: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis client: CAFile %s holds no PEM certificate", c.CAFile)
		}
	}
	return tc, nil
}
