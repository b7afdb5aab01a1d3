// Package redis implements the Redis side of evflow's projections with
// rueidis: the hot-path store of [projections.Redis] (current release per
// app, launch counters, unique devices, top apps of the day), its
// checkpoints, and the reads the query API serves from them.
//
// Every write is a Lua script that compares the event's stream position with
// the one stored beside the data and writes in the same step (DESIGN.md,
// invariant 2), so redelivering any batch, or any part of one, is a no-op.
package redis

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/redis/rueidis"

	"github.com/evflow/evflow/projections"
)

var (
	_ projections.HotStore    = (*Store)(nil)
	_ projections.Checkpoints = (*Store)(nil)
)

// prefixPattern is what a key prefix may look like: no braces, so a prefix
// cannot change the keys' Redis Cluster hash tags, and no spaces.
var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_.:\-]{1,64}$`)

// DefaultWaitTimeout is [Config.WaitTimeout] when unset.
const DefaultWaitTimeout = time.Second

// Config configures a [Store].
type Config struct {
	// Prefix starts every key the store reads and writes; [DefaultPrefix]
	// when empty. A projection rebuild writes into a shadow key space under
	// another prefix, then swaps it in.
	Prefix string
	// WaitReplicas, when above 0, makes SaveCheckpoint return only once
	// that many replicas have the checkpoint, and so the batch before it
	// (WAIT): a batch is acknowledged on the stream only once a replica
	// Sentinel may promote holds it. While fewer replicas are connected
	// than that, it waits for those that are, and for none when none is.
	// Default 0: no wait.
	WaitReplicas int
	// WaitTimeout bounds that wait; [DefaultWaitTimeout] when unset.
	WaitTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = DefaultWaitTimeout
	}
}

// Validate reports what is wrong with the configuration, if anything.
func (c Config) Validate() error {
	var errs []error
	if !prefixPattern.MatchString(c.Prefix) {
		errs = append(errs, fmt.Errorf("redis config: Prefix %q must be 1-64 characters of [A-Za-z0-9_.:-]", c.Prefix))
	}
	if c.WaitReplicas < 0 {
		errs = append(errs, fmt.Errorf("redis config: WaitReplicas %d must not be negative", c.WaitReplicas))
	}
	return errors.Join(errs...)
}

// Store is the Redis hot-path store. It is safe for concurrent use; it
// holds no state besides the client and its configuration.
type Store struct {
	client rueidis.CommandClient
	keys   keys
	cfg    Config
}

// New returns a store writing through client (a [rueidis.Client], or any
// narrower [rueidis.CommandClient]). The caller owns client and closes it.
func New(client rueidis.CommandClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("redis store: nil client")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{client: client, keys: keys{prefix: cfg.Prefix}, cfg: cfg}, nil
}

// Prefix is the prefix of every key the store uses.
func (s *Store) Prefix() string { return s.keys.prefix }
