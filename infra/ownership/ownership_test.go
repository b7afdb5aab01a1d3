package ownership_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/infra/ownership"
	"github.com/evflow/evflow/infra/testenv"
)

const (
	partitions = 16
	ttl        = 1 * time.Second
)

// ledger records which replica consumes which partition, across all
// replicas of a test, and fails the test when a partition is assigned to a
// replica while another one still consumes it.
type ledger struct {
	t     *testing.T
	mu    sync.Mutex
	owner map[int]string
}

// consumer is one replica's view of the ledger; it is the seam where the
// projection runners plug in.
type consumer struct {
	l  *ledger
	id string
}

func (c *consumer) Assign(p int) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if o, ok := c.l.owner[p]; ok && o != c.id {
		c.l.t.Errorf("partition %d assigned to %s while %s consumes it", p, c.id, o)
	}
	c.l.owner[p] = c.id
}

func (c *consumer) Revoke(p int) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.l.owner[p] == c.id {
		delete(c.l.owner, p)
	}
}

func (c *consumer) list() []int {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	var out []int
	for p, o := range c.l.owner {
		if o == c.id {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// die forgets what the replica consumed, as its process ending would.
func (c *consumer) die() {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	for p, o := range c.l.owner {
		if o == c.id {
			delete(c.l.owner, p)
		}
	}
}

type node struct {
	coord *ownership.Coordinator
	cons  *consumer
	stop  context.CancelFunc
	done  chan struct{}
}

func start(t *testing.T, l *ledger, js jetstream.JetStream, id string) *node {
	t.Helper()
	n := &node{cons: &consumer{l: l, id: id}, done: make(chan struct{})}
	var err error
	n.coord, err = ownership.New(testenv.Context(t), js, ownership.Config{Replica: id, Partitions: partitions, TTL: ttl}, n.cons)
	if err != nil {
		t.Fatalf("new coordinator %s: %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	go func() { defer close(n.done); _ = n.coord.Run(ctx) }()
	t.Cleanup(n.kill)
	return n
}

// run runs coord until the returned stop, or the test's end; stop
// returns once Run has.
func run(t *testing.T, coord *ownership.Coordinator) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = coord.Run(ctx) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

// kill stops the coordinator without releasing anything, like kill -9.
func (n *node) kill() { n.stop(); <-n.done }

func connect(t *testing.T) (jetstream.JetStream, *ledger) {
	t.Helper()
	srv := testenv.StartNATS(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	return js, &ledger{t: t, owner: map[int]string{}}
}

// balanced waits until the nodes own every partition, each within one of
// the others' count.
func balanced(t *testing.T, timeout time.Duration, nodes ...*node) {
	t.Helper()
	testenv.WaitFor(t, timeout, func() error {
		var counts []int
		total := 0
		for _, n := range nodes {
			k := len(n.cons.list())
			counts, total = append(counts, k), total+k
		}
		if total != partitions {
			return fmt.Errorf("%d of %d partitions consumed (%v)", total, partitions, counts)
		}
		if slices.Max(counts)-slices.Min(counts) > 1 {
			return fmt.Errorf("unbalanced: %v", counts)
		}
		return nil
	})
}

func TestPartitionsSpreadAcrossReplicasAndMoveOnJoin(t *testing.T) {
	js, l := connect(t)
	a, b, c := start(t, l, js, "a"), start(t, l, js, "b"), start(t, l, js, "c")
	balanced(t, 5*time.Second, a, b, c)
	d := start(t, l, js, "d")
	began := time.Now()
	balanced(t, 3*ttl, a, b, c, d)
	t.Logf("a replica joining got its share in %s", time.Since(began))
	if len(d.cons.list()) != partitions/4 {
		t.Fatalf("late replica owns %v, want %d partitions", d.cons.list(), partitions/4)
	}
	// Every replica's view of the bucket names each partition's holder.
	testenv.WaitFor(t, 2*time.Second, func() error {
		for _, n := range []*node{a, b, c, d} {
			owners := n.coord.Owners()
			for _, m := range []*node{a, b, c, d} {
				for _, p := range m.coord.Owned() {
					if owners[p] != m.coord.Replica() {
						return fmt.Errorf("%s sees partition %d held by %q, want %s", n.coord.Replica(), p, owners[p], m.coord.Replica())
					}
				}
			}
		}
		return nil
	})
}

func TestReleasedPartitionsMoveWithinATick(t *testing.T) {
	js, l := connect(t)
	a, b, c := start(t, l, js, "a"), start(t, l, js, "b"), start(t, l, js, "c")
	balanced(t, 5*time.Second, a, b, c)
	c.kill()
	began := time.Now()
	c.coord.Release(context.Background())
	balanced(t, ttl, a, b)
	if c.coord.Owned() != nil && len(c.coord.Owned()) != 0 {
		t.Fatalf("released replica still holds %v", c.coord.Owned())
	}
	t.Logf("takeover after a graceful stop: %s", time.Since(began))
}

func TestSilentReplicaLosesItsPartitionsAfterTheTTL(t *testing.T) {
	js, l := connect(t)
	a, b, c := start(t, l, js, "a"), start(t, l, js, "b"), start(t, l, js, "c")
	balanced(t, 5*time.Second, a, b, c)
	orphans := c.cons.list()
	c.kill() // no release: its leases must expire
	c.cons.die()
	began := time.Now()
	balanced(t, 3*ttl, a, b)
	took := time.Since(began)
	if took < ttl/2 {
		t.Fatalf("partitions moved after %s, before the lease TTL %s could expire", took, ttl)
	}
	if got := a.coord.Takeovers() + b.coord.Takeovers(); got != uint64(len(orphans)) {
		t.Fatalf("survivors counted %d takeovers, want %d", got, len(orphans))
	}
	t.Logf("takeover after a silent death: %s (TTL %s)", took, ttl)
}

// countingConsumer counts revocations.
type countingConsumer struct {
	*consumer
	revokes atomic.Int64
}

func (c *countingConsumer) Revoke(p int) { c.revokes.Add(1); c.consumer.Revoke(p) }

// A bucket outage that ends within the lease's margin (NATS restarting)
// does not make a replica give up its partitions: a failed renewal is
// retried at the next tick, and only a lease another replica holds, or one
// not renewed for 2/3 of TTL, is revoked.
func TestBriefBucketOutageKeepsLeases(t *testing.T) {
	srv := testenv.StartNATS(t)
	// Without a reconnect buffer a request fails at once while the server is
	// down, as one does when a clustered stream has no leader.
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	l := &ledger{t: t, owner: map[int]string{}}
	cons := &countingConsumer{consumer: &consumer{l: l, id: "a"}}
	const longTTL = 6 * time.Second // renewals every 2s, margin 4s
	coord, err := ownership.New(testenv.Context(t), js, ownership.Config{Replica: "a", Partitions: partitions, TTL: longTTL}, cons)
	if err != nil {
		t.Fatal(err)
	}
	run(t, coord)
	testenv.WaitFor(t, 5*time.Second, func() error {
		if n := len(cons.list()); n != partitions {
			return fmt.Errorf("owns %d of %d partitions", n, partitions)
		}
		return nil
	})
	// Catch a renewal, then go down across the next one (2s later) and come
	// back before the margin (4s) is up.
	kv, _ := js.KeyValue(testenv.Context(t), ownership.DefaultBucket)
	first, _ := kv.Get(testenv.Context(t), "p.0")
	testenv.WaitEvery(t, 5*time.Second, 10*time.Millisecond, func() error {
		if e, err := kv.Get(testenv.Context(t), "p.0"); err != nil || e.Revision() == first.Revision() {
			return fmt.Errorf("no renewal yet")
		}
		return nil
	})
	time.Sleep(time.Second)
	began := time.Now()
	srv = testenv.RestartNATSAfter(t, srv, 1500*time.Millisecond)
	testenv.WaitFor(t, 5*time.Second, func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("not reconnected")
		}
		return nil
	})
	outage := time.Since(began)
	time.Sleep(longTTL / 2) // the retries, and a renewal round after them
	if outage > 2*time.Second {
		t.Fatalf("the outage lasted %s, longer than this test assumes (2s)", outage)
	}
	if n := cons.revokes.Load(); n != 0 {
		t.Errorf("%d partitions revoked over a %s outage, want none", n, outage)
	}
	if n := len(cons.list()); n != partitions {
		t.Errorf("owns %d of %d partitions after the outage", n, partitions)
	}
	t.Logf("bucket outage of %s; revocations: %d", outage, cons.revokes.Load())
}

// slowConsumer takes start to begin consuming a partition (subscribing
// under load) and drain to revoke one, as a projection runner does while
// it applies and stores the batch in hand.
type slowConsumer struct {
	*consumer
	start, drain time.Duration
}

func (c *slowConsumer) Assign(p int) { c.consumer.Assign(p); time.Sleep(c.start) }
func (c *slowConsumer) Revoke(p int) { time.Sleep(c.drain); c.consumer.Revoke(p) }

// A replica that takes long to start its partitions keeps renewing the
// leases it already holds meanwhile, so a replica joining then cannot take
// a partition still consumed (the ledger fails the test if it does).
func TestSlowStartKeepsTheLeasesHeld(t *testing.T) {
	js, l := connect(t)
	slow := &slowConsumer{consumer: &consumer{l: l, id: "a"}, start: ttl / 4}
	a, err := ownership.New(testenv.Context(t), js, ownership.Config{Replica: "a", Partitions: partitions, TTL: ttl}, slow)
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	testenv.WaitFor(t, 5*time.Second, func() error {
		if len(slow.list()) == 0 {
			return fmt.Errorf("a has not started a partition yet")
		}
		return nil
	})
	b := start(t, l, js, "b")
	// a takes every partition it saw free, one every ttl/4, while b takes
	// the rest and then waits for a's surplus.
	anode := &node{cons: slow.consumer}
	balanced(t, partitions*slow.start+5*ttl, anode, b)
}

// A drain longer than the lease TTL keeps its partitions: the replica
// heartbeats and renews until the drain returns, even once it was told to
// stop mid-drain, so no other replica applies a partition whose batch is
// still being applied (the ledger fails the test if one does). Then the
// leases are deleted at once, not left to expire.
func TestDrainLongerThanTheTTLKeepsItsPartitions(t *testing.T) {
	js, l := connect(t)
	const drain = 5 * ttl / 2
	slow := &slowConsumer{consumer: &consumer{l: l, id: "a"}, drain: drain}
	a, err := ownership.New(testenv.Context(t), js, ownership.Config{Replica: "a", Partitions: partitions, TTL: ttl}, slow)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, a)
	testenv.WaitFor(t, 5*time.Second, func() error {
		if n := len(slow.list()); n != partitions {
			return fmt.Errorf("a owns %d of %d partitions", n, partitions)
		}
		return nil
	})

	// b joins: a drains the half it gives, and is stopped in the middle.
	b := start(t, l, js, "b")
	testenv.WaitFor(t, 5*time.Second, func() error {
		if n := len(slow.list()); n == partitions {
			return fmt.Errorf("a has not begun to give partitions to b")
		}
		return nil
	})
	time.Sleep(drain / 2)
	stop()
	if n := len(b.cons.list()); n != partitions/2 {
		t.Fatalf("once a's first drain ended, b owns %d partitions, want %d", n, partitions/2)
	}
	began := time.Now()
	a.Release(context.Background())
	released := time.Since(began)
	balanced(t, ttl, b)
	if released < drain {
		t.Fatalf("Release returned after %s, before its drain (%s)", released, drain)
	}
	t.Logf("drains of %s with a lease TTL of %s: b took over %s after a released", drain, ttl, time.Since(began)-released)
}
