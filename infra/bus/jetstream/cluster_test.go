package jetstream_test

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

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/testenv"
)

// Sizes of the leader-loss test.
const (
	batchSize        = 50
	ackedBeforeFault = 2000
	ackedInTotal     = 6000
	ackedAfterFault  = 1000
	// appendTimeout bounds one Append, as a client's request deadline
	// would. The Publisher sets no ack timeout of its own: when the leader
	// dies holding a batch sent through a follower, the batch's acks never
	// come and the Append waits until this deadline before it is retried.
	appendTimeout = 5 * time.Second
)

// TestR3StreamKeepsEveryAcknowledgedPublishWhenTheLeaderDies proves
// invariant 1 across a leader loss: a client keeps appending batches (and
// retries a failed batch with the same ids, as the client contract says)
// while the stream leader is shut down; publishing resumes by itself, and
// the stream then holds every acknowledged event exactly once.
//
// The client meets the fault in one of two ways, each a subtest: on the
// leader, its connection drops and it reconnects to a survivor; on a
// follower, its connection stays up while the acks of the messages the
// leader took with it never come.
func TestR3StreamKeepsEveryAcknowledgedPublishWhenTheLeaderDies(t *testing.T) {
	for _, tc := range []struct {
		name     string
		onLeader bool
	}{
		{"client on the leader", true},
		{"client on a follower", false},
	} {
		t.Run(tc.name, func(t *testing.T) { leaderLoss(t, tc.onLeader) })
	}
}

func leaderLoss(t *testing.T, clientOnLeader bool) {
	started := time.Now()
	cluster := testenv.StartNATSCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	js := connect(t, cluster.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if _, err := evjs.EnsureStream(ctx, js, evjs.StreamConfig{Partitions: partitions, Replicas: 3}); err != nil {
		t.Fatalf("ensure R3 stream: %v", err)
	}
	placeLeader(t, cluster, js.Conn(), clientOnLeader)
	a := bus.NewAppender(evjs.NewPublisher(js, evjs.PublisherConfig{}), evjs.DefaultTopic, partitions)
	t.Logf("cluster and stream ready after %s", time.Since(started).Round(time.Millisecond))

	p := &launcher{appender: a, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run(ctx)
	defer p.halt()

	testenv.WaitFor(t, 15*time.Second, func() error { return p.atLeast(ackedBeforeFault) })
	leader := cluster.StreamLeader(t, evjs.DefaultStream)
	client := js.Conn().ConnectedServerName()
	fault := time.Now()
	atFault := p.acked.Load()
	cluster.Shutdown(t, leader)
	t.Logf("shut down stream leader %s (the client was on %s) with %d events acked, in %s",
		leader.Name(), client, atFault, time.Since(fault).Round(time.Millisecond))

	testenv.WaitFor(t, 20*time.Second, func() error {
		return p.atLeast(max(ackedInTotal, atFault+ackedAfterFault))
	})
	p.halt()
	t.Logf("target reached %s after the fault: %d events acked (%d after it) by %d appends, %d failed "+
		"(last error: %v); first ack %s after the fault, slowest append %s; acks still pending in the client: %d",
		time.Since(fault).Round(time.Millisecond), p.acked.Load(), p.acked.Load()-atFault, len(p.batches),
		p.failures.Load(), p.lastErr, p.firstAckAfter(fault), p.slowest.Round(time.Millisecond), js.PublishAsyncPending())

	readStart := time.Now()
	survivor := cluster.Running()[0]
	msgs, stored := readAll(ctx, t, connect(t, survivor.ClientURL()))
	acked := map[string]bool{}
	var lost, doubled []string
	for _, b := range p.batches {
		for _, id := range b {
			acked[id] = true
			switch n := stored[id]; {
			case n == 0:
				lost = append(lost, id)
			case n > 1:
				doubled = append(doubled, id)
			}
		}
	}
	var strays []string
	for id := range stored {
		if !acked[id] {
			strays = append(strays, id)
		}
	}
	if len(lost)+len(doubled)+len(strays) > 0 {
		t.Errorf("of %d acknowledged events, %d are lost %v and %d stored twice or more %v; %d stored were never acknowledged %v",
			len(acked), len(lost), head(lost), len(doubled), head(doubled), len(strays), head(strays))
	}
	if msgs != uint64(len(acked)) {
		t.Errorf("stream holds %d messages, want %d: the distinct acknowledged events", msgs, len(acked))
	}
	t.Logf("read back %d messages from %s in %s; test took %s", msgs, survivor.Name(),
		time.Since(readStart).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
}

// placeLeader steps the stream leader down until the client's server is
// (onLeader) or is not the stream leader.
func placeLeader(t *testing.T, cluster *testenv.NATSCluster, nc *nats.Conn, onLeader bool) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, func() error {
		leader := cluster.StreamLeader(t, evjs.DefaultStream)
		if (leader.Name() == nc.ConnectedServerName()) == onLeader {
			return nil
		}
		if err := leader.JetStreamStepdownStream(testenv.GlobalAccount, evjs.DefaultStream); err != nil {
			return fmt.Errorf("step down %s: %w", leader.Name(), err)
		}
		testenv.WaitFor(t, 10*time.Second, func() error {
			if leader.JetStreamIsStreamLeader(testenv.GlobalAccount, evjs.DefaultStream) {
				return fmt.Errorf("%s still leads after stepping down", leader.Name())
			}
			return nil
		})
		return fmt.Errorf("stream leader %s, client on %s: stepped down", leader.Name(), nc.ConnectedServerName())
	})
}

// head returns the first few ids, for a readable failure.
func head(ids []string) []string {
	slices.Sort(ids)
	return ids[:min(len(ids), 5)]
}

// launcher appends batches of launches with distinct ids, retrying a
// failed batch with the same ids until it is acknowledged.
type launcher struct {
	appender *bus.Appender
	stop     chan struct{}
	done     chan struct{}
	halted   sync.Once

	acked    atomic.Int64
	failures atomic.Int64
	// Written by run, read after done is closed.
	batches [][]string
	ackedAt []time.Time
	lastErr error
	slowest time.Duration
}

func (l *launcher) run(ctx context.Context) {
	defer close(l.done)
	for n := 0; ; n++ {
		envs := make([]events.Envelope, batchSize)
		ids := make([]string, batchSize)
		for i := range envs {
			k := n*batchSize + i
			ids[i] = fmt.Sprintf("launch-%06d", k)
			envs[i] = launch(ids[i], fmt.Sprintf("app%d", k%17), k)
		}
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			actx, cancel := context.WithTimeout(ctx, appendTimeout)
			began := time.Now()
			_, err := l.appender.Append(actx, nil, envs...)
			cancel()
			l.slowest = max(l.slowest, time.Since(began))
			if err == nil {
				break
			}
			l.failures.Add(1)
			l.lastErr = err
			select {
			case <-l.stop:
				return
			case <-time.After(50 * time.Millisecond): // back off before the same batch again
			}
		}
		l.batches = append(l.batches, ids)
		l.ackedAt = append(l.ackedAt, time.Now())
		l.acked.Add(batchSize)
	}
}

// halt stops run after its current append and waits for it; idempotent.
func (l *launcher) halt() {
	l.halted.Do(func() { close(l.stop) })
	<-l.done
}

func (l *launcher) atLeast(n int64) error {
	if got := l.acked.Load(); got < n {
		return fmt.Errorf("%d events acked, want %d (%d appends failed)", got, n, l.failures.Load())
	}
	return nil
}

// firstAckAfter is how long after t the first batch was acknowledged; call
// after halt.
func (l *launcher) firstAckAfter(t time.Time) time.Duration {
	for _, at := range l.ackedAt {
		if at.After(t) {
			return at.Sub(t).Round(time.Millisecond)
		}
	}
	return -1
}

func connect(t *testing.T, urls string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

// readAll reads the whole stream with an ordered consumer and returns its
// message count and how often it holds each event id (from its Nats-Msg-Id, bus.DedupKey).
func readAll(ctx context.Context, t *testing.T, js jetstream.JetStream) (uint64, map[string]int) {
	t.Helper()
	s, err := js.Stream(ctx, evjs.DefaultStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	want := s.CachedInfo().State.Msgs
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	it, err := c.Messages()
	if err != nil {
		t.Fatalf("messages: %v", err)
	}
	defer it.Stop()
	got := map[string]int{}
	for n := uint64(0); n < want; n++ {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			t.Fatalf("read message %d of %d: %v", n+1, want, err)
		}
		got[bus.EventIDOf(m.Headers().Get(nats.MsgIdHdr))]++
	}
	return want, got
}
