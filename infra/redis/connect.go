package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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
	// Addr is the server's host:port. Required; tests pass the address of
	// a server they stop and restart to inject faults.
	Addr string
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
	// seam for tests that cut connections.
	DialCtxFn func(ctx context.Context, addr string, d *net.Dialer, cfg *tls.Config) (net.Conn, error)
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
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("redis client: Addr %q must be host:port: %w", c.Addr, err))
	}
	if c.ConnWriteTimeout < 0 {
		errs = append(errs, errors.New("redis client: ConnWriteTimeout must not be negative"))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, errors.New("redis client: DialTimeout must not be negative"))
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
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:      []string{cfg.Addr},
		DisableCache:     true,
		ConnWriteTimeout: cfg.ConnWriteTimeout,
		Dialer:           net.Dialer{Timeout: cfg.DialTimeout},
		DialCtxFn:        cfg.DialCtxFn,
		DisableRetry:     cfg.MaxRetries < 0,
		RetryDelay:       retryDelay(cfg.MaxRetries),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to redis at %s: %w", cfg.Addr, err)
	}
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, fmt.Errorf("connect to redis at %s: ping: %w", cfg.Addr, err)
	}
	return client, nil
}
