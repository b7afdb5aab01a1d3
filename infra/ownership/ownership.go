// Package ownership decides which replica consumes which partition.
//
// Choice: leases in a JetStream KV bucket rather than pinned-client priority
// groups. evflow reads each partition with an ordered consumer that starts
// after the projection's own checkpoint (see infra/bus/jetstream), so there is
// no durable consumer to pin; and a pinned durable consumer may hand a new
// client fresh messages before the unacknowledged ones of the client it
// replaced, which position-guarded projections would ignore rather than
// apply. A lease says who reads a partition; the checkpoint says from where.
//
// How it works. Every replica heartbeats a key member.<id> and watches the
// bucket. Live replicas are those heard from within TTL (by the watcher's own
// clock, so clocks need not agree). Partitions are spread evenly over the
// live replicas, moving as few as possible: a replica keeps what it holds up
// to its share, and only surplus and orphaned partitions move. A replica takes a
// partition it should own when its lease key p.<n> is absent, deleted, or not
// renewed for TTL, by compare-and-set on the revision it saw; it renews its
// leases every TTL/3 by compare-and-set, and revokes a partition locally the
// moment a renewal finds another owner, or once it could not renew for 2/3
// of TTL (the bucket unreachable), before anyone else may take it. A replica that should no longer own a partition (a
// replica joined, or it is stopping) drains it and deletes the lease, which
// the new owner sees at once; it keeps heartbeating and renewing while it
// drains, however long that takes, so a partition never has two owners
// because a drain outlasted a lease. So a replica that is killed loses its partitions within about TTL plus
// one tick; one that is stopped hands them over within a tick.
//
// Two replicas may briefly both apply a partition (a paused replica that has
// not yet noticed its lease is gone): projections stay exact because every
// write is conditional on the event's position.
package ownership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of [Config].
const (
	DefaultBucket = "evflow_owners"
	DefaultTTL    = 3 * time.Second
)

// Assigner consumes the partitions it is given.
type Assigner interface {
	// Assign starts consuming partition p.
	Assign(p int)
	// Revoke stops consuming p after the work in hand is acknowledged.
	Revoke(p int)
}

// Config configures a [Coordinator].
type Config struct {
	// Replica is this replica's unique id; default hostname-pid.
	Replica string
	// Partitions is the number of partitions. Required.
	Partitions int
	// TTL is how long a silent replica keeps its partitions; default [DefaultTTL].
	TTL time.Duration
	// Tick is how often ownership is reconsidered; default TTL/10.
	Tick time.Duration
	// Bucket is the KV bucket; default [DefaultBucket].
	Bucket string
	// Replicas of the bucket's stream: 3 in a cluster, 1 on a single node; default 1.
	Replicas int
	// Logger; default slog.Default().
	Logger *slog.Logger
}

var replicaPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidReplica reports whether id is usable as a replica id.
func ValidReplica(id string) bool { return replicaPattern.MatchString(id) }

// DefaultReplica is hostname-pid, made safe for a key.
func DefaultReplica() string {
	h, _ := os.Hostname()
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, h)
	if len(id) > 50 {
		id = id[:50]
	}
	return fmt.Sprintf("%s-%d", id, os.Getpid())
}

func (c *Config) setDefaults() {
	if c.Replica == "" {
		c.Replica = DefaultReplica()
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.Tick <= 0 {
		c.Tick = c.TTL / 10
	}
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c Config) validate() error {
	var errs []error
	if !ValidReplica(c.Replica) {
		errs = append(errs, fmt.Errorf("ownership: replica id %q must be 1-64 characters of [A-Za-z0-9_-]", c.Replica))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("ownership: Partitions must be at least 1, got %d", c.Partitions))
	}
	if c.Tick >= c.TTL {
		errs = append(errs, fmt.Errorf("ownership: Tick %s must be shorter than TTL %s", c.Tick, c.TTL))
	}
	return errors.Join(errs...)
}

// entry is what the watcher last saw of a key.
type entry struct {
	value string
	rev   uint64
	seen  time.Time
}

// Coordinator runs this replica's side of partition ownership.
//
// Lock order: mu, then nothing; Assigner calls are made without mu held.
type Coordinator struct {
	cfg    Config
	kv     jetstream.KeyValue
	assign Assigner
	log    *slog.Logger

	takeovers atomic.Uint64
	wake      chan struct{}
	stopOnce  sync.Once
	cancel    context.CancelFunc
	done      chan struct{}

	mu      sync.Mutex
	members map[string]entry // replica id → heartbeat
	leases  map[int]entry    // partition → owner
	owned   map[int]uint64   // partition → our lease revision
	// revoking holds the partitions whose lease was lost while they
	// drain; revokes waits for those drains.
	revoking map[int]bool
	revokes  sync.WaitGroup
	// renewedAt is when the last successful renewal (or the acquisition)
	// of each owned lease was sent.
	renewedAt map[int]time.Time
	renewed   time.Time
	retry     bool // a renewal failed: try again at the next tick
	beat      time.Time
}

// New creates (or opens) the lease bucket and returns a coordinator that
// will hand partitions to assign.
func New(ctx context.Context, js jetstream.JetStream, cfg Config, assign Assigner) (*Coordinator, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "evflow partition leases and replica heartbeats",
		History:     1,
		TTL:         10 * cfg.TTL, // garbage-collects keys of replicas long gone
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", cfg.Bucket, err)
	}
	return &Coordinator{
		cfg: cfg, kv: kv, assign: assign, log: cfg.Logger.With("replica", cfg.Replica),
		wake:    make(chan struct{}, 1),
		members: map[string]entry{}, leases: map[int]entry{}, owned: map[int]uint64{}, renewedAt: map[int]time.Time{},
		revoking: map[int]bool{},
	}, nil
}

// openBucket creates or opens the bucket, retrying until ctx ends: a
// cluster that is still forming may not answer, or may answer that the
// replicas another node asked for at the same moment are being placed.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		kv, err := js.CreateOrUpdateKeyValue(actx, cfg)
		cancel()
		if err == nil || ctx.Err() != nil {
			return kv, err
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}

// Replica is this replica's id.
func (c *Coordinator) Replica() string { return c.cfg.Replica }

// Takeovers counts partitions this replica took from another replica.
func (c *Coordinator) Takeovers() uint64 { return c.takeovers.Load() }

// Owned lists the partitions this replica holds leases on.
func (c *Coordinator) Owned() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int, 0, len(c.owned))
	for p := range c.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Owners returns the holder of every partition whose lease was renewed
// within TTL, as this replica's watch of the bucket last saw it.
func (c *Coordinator) Owners() map[int]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	out := make(map[int]string, len(c.leases))
	for p, e := range c.leases {
		if now.Sub(e.seen) < c.cfg.TTL {
			out[p] = e.value
		}
	}
	return out
}

// Start runs the coordinator in the background until [Coordinator.Stop].
func (c *Coordinator) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	go func() {
		defer close(c.done)
		if err := c.Run(ctx); err != nil {
			c.log.Error("partition ownership stopped", "err", err)
		}
	}()
}

// Stop hands over: it stops taking partitions, then drains and releases
// the ones it holds (see [Coordinator.Release]). It is idempotent and
// returns once the partitions are released.
func (c *Coordinator) Stop(ctx context.Context) {
	c.stopOnce.Do(func() {
		if c.cancel != nil {
			c.cancel()
			<-c.done
		}
		c.Release(ctx)
	})
}

// Run takes part in ownership until ctx is cancelled; then call Release.
func (c *Coordinator) Run(ctx context.Context) error {
	w, err := c.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch lease bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()
	go c.watch(w)
	stop := c.keep(ctx)
	defer stop()
	t := time.NewTicker(c.cfg.Tick)
	defer t.Stop()
	for {
		c.step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.wake:
		}
	}
}

func (c *Coordinator) watch(w jetstream.KeyWatcher) {
	for e := range w.Updates() {
		if e == nil {
			continue // end of the initial values
		}
		now := time.Now()
		c.mu.Lock()
		deleted := e.Operation() != jetstream.KeyValuePut
		switch k := e.Key(); {
		case strings.HasPrefix(k, "member."):
			id := strings.TrimPrefix(k, "member.")
			if deleted {
				delete(c.members, id)
			} else {
				c.members[id] = entry{value: string(e.Value()), rev: e.Revision(), seen: now}
			}
		case strings.HasPrefix(k, "p."):
			p, err := strconv.Atoi(strings.TrimPrefix(k, "p."))
			if err != nil {
				break
			}
			if deleted {
				delete(c.leases, p)
			} else {
				c.leases[p] = entry{value: string(e.Value()), rev: e.Revision(), seen: now}
			}
		}
		c.mu.Unlock()
		if deleted {
			c.poke()
		}
	}
}

func (c *Coordinator) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func leaseKey(p int) string { return "p." + strconv.Itoa(p) }
