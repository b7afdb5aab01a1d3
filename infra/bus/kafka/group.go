package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of [GroupConfig].
const DefaultSessionTimeout = 6 * time.Second // Kafka's group.min.session.timeout.ms

// Assigner consumes the partitions it is given (ownership.Assigner).
type Assigner interface {
	// Assign starts consuming partition p.
	Assign(p int)
	// Revoke stops consuming p after the work in hand is acknowledged.
	Revoke(p int)
}

// GroupConfig configures a [Group].
type GroupConfig struct {
	// Brokers are the seed brokers; required.
	Brokers []string
	// Topic is the event topic; default [DefaultTopic].
	Topic string
	// Group is the consumer group; default [DefaultGroup].
	Group string
	// Replica is this replica's id, reported by [Group.Replica].
	Replica string
	// SessionTimeout is how long a silent member keeps its partitions;
	// default [DefaultSessionTimeout]. The broker bounds it by its
	// group.min.session.timeout.ms.
	SessionTimeout time.Duration
	// Opts are added to the group's client (TLS, SASL).
	Opts []kgo.Opt
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Group decides which replica consumes which partition through a Kafka
// consumer group with the cooperative-sticky balancer: a replica that
// joins or leaves moves only the partitions it must, and a partition is
// given to its next owner only once its previous owner revoked it, that is
// drained and stored the batch in hand. A member that dies loses its
// partitions when its session times out. The group's client fetches
// nothing: subscriptions read from the projections' checkpoints, not from
// committed offsets, so the group only says who reads.
type Group struct {
	cfg GroupConfig
	a   Assigner

	mu        sync.Mutex
	cl        *kgo.Client
	owned     map[int]bool
	joined    bool
	takeovers atomic.Uint64
}

// NewGroup returns a group member that hands its partitions to a.
func NewGroup(cfg GroupConfig, a Assigner) (*Group, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka group: Brokers are required")
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Group{cfg: cfg, a: a, owned: map[int]bool{}}, nil
}

// Start joins the group.
func (g *Group) Start() error {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(g.cfg.Brokers...),
		kgo.ConsumerGroup(g.cfg.Group),
		kgo.ConsumeTopics(g.cfg.Topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(g.cfg.SessionTimeout),
		kgo.HeartbeatInterval(g.cfg.SessionTimeout / 6),
		kgo.RebalanceTimeout(time.Minute),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(g.assigned),
		kgo.OnPartitionsRevoked(g.revoked),
		kgo.OnPartitionsLost(g.lost),
	}, g.cfg.Opts...)...)
	if err != nil {
		return fmt.Errorf("join group %s: %w", g.cfg.Group, err)
	}
	cl.PauseFetchTopics(g.cfg.Topic)
	g.mu.Lock()
	g.cl = cl
	g.mu.Unlock()
	return nil
}

// Stop drains every partition while still a member, then leaves the group,
// so the others take them over at once; it returns when ctx ends at the
// latest.
func (g *Group) Stop(ctx context.Context) {
	g.mu.Lock()
	cl := g.cl
	g.cl = nil
	g.mu.Unlock()
	if cl == nil {
		return
	}
	// Leaving first would stop the heartbeats while the partitions drain,
	// and the group could hand them over before their batches are stored.
	g.revokeAll(g.Owned())
	left := make(chan struct{})
	go func() {
		defer close(left)
		if err := cl.LeaveGroupContext(ctx); err != nil {
			g.cfg.Logger.Warn("leave group", "group", g.cfg.Group, "err", err)
		}
		cl.Close()
	}()
	select {
	case <-left:
	case <-ctx.Done():
		g.cfg.Logger.Warn("leave group: gave up waiting", "group", g.cfg.Group, "err", ctx.Err())
	}
}

// Replica returns this replica's id.
func (g *Group) Replica() string { return g.cfg.Replica }

// Owned returns the partitions this member consumes, in order.
func (g *Group) Owned() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]int, 0, len(g.owned))
	for p := range g.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Takeovers counts the partitions assigned after this member's first
// assignment: partitions another member left or lost.
func (g *Group) Takeovers() uint64 { return g.takeovers.Load() }

func (g *Group) assigned(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	ps := parts[g.cfg.Topic]
	g.mu.Lock()
	first := !g.joined
	g.joined = true
	var fresh []int
	for _, p := range ps {
		if !g.owned[int(p)] {
			g.owned[int(p)] = true
			fresh = append(fresh, int(p))
		}
	}
	g.mu.Unlock()
	if !first {
		g.takeovers.Add(uint64(len(fresh)))
	}
	if len(fresh) > 0 {
		g.cfg.Logger.Info("partitions assigned", "group", g.cfg.Group, "partitions", fresh)
	}
	for _, p := range fresh {
		g.a.Assign(p)
	}
}

func (g *Group) revoked(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	g.revokeAll(toInts(parts[g.cfg.Topic]))
}

func (g *Group) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	if ps := toInts(parts[g.cfg.Topic]); len(ps) > 0 {
		g.cfg.Logger.Warn("partitions lost (session expired or fenced)", "group", g.cfg.Group, "partitions", ps)
		g.revokeAll(ps)
	}
}

// revokeAll drains the partitions of ps this member owns, in parallel.
func (g *Group) revokeAll(ps []int) {
	g.mu.Lock()
	var mine []int
	for _, p := range ps {
		if g.owned[p] {
			mine = append(mine, p)
		}
	}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range mine {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.a.Revoke(p)
		}()
	}
	wg.Wait()
	g.mu.Lock()
	for _, p := range mine {
		delete(g.owned, p)
	}
	g.mu.Unlock()
	if len(mine) > 0 {
		g.cfg.Logger.Info("partitions revoked", "group", g.cfg.Group, "partitions", mine)
	}
}

func toInts(ps []int32) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = int(p)
	}
	return out
}
