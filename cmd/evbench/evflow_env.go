package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/rueidis"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/bus"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/redis"
	"github.com/evflow/evflow/projections"
)

// evflowRedisDB is the Redis database the evflow measurements write to,
// apart from the other sections' keys; it is flushed after each one.
const evflowRedisDB = 7

// evEnv is what the evflow measurements share: two NATS connections, one
// for the publishing side (an SDK, an ingesting replica) and one for the
// projecting side (a replica's runners), as they would be two processes,
// and a Redis client.
type evEnv struct {
	st        *stand
	cfg       config
	log       *slog.Logger
	pubConn   *nats.Conn
	subConn   *nats.Conn
	pub, sub  jetstream.JetStream
	redis     rueidis.Client
	streamSeq int
}

func newEvEnv(ctx context.Context, st *stand, cfg config) (*evEnv, error) {
	e := &evEnv{st: st, cfg: cfg, log: st.log.With("section", "evflow")}
	var err error
	if e.pubConn, e.pub, err = connectJS(st.NATSURL(), "evbench-evflow-publish"); err != nil {
		return nil, err
	}
	if e.subConn, e.sub, err = connectJS(st.NATSURL(), "evbench-evflow-project"); err != nil {
		e.close()
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if e.redis, err = redis.Connect(cctx, redis.ClientConfig{Addr: st.RedisAddr, DB: evflowRedisDB}); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// connectJS connects to NATS as a replica does (infra/platform): abandoned
// acks are dropped after the publisher's ack timeout.
func connectJS(url, name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name(name))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(evjs.DefaultAckTimeout))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

func (e *evEnv) close() {
	if e.redis != nil {
		e.redis.Close()
	}
	for _, nc := range []*nats.Conn{e.pubConn, e.subConn} {
		if nc != nil {
			nc.Close()
		}
	}
}

// flushRedis removes every key the measurements wrote.
func (e *evEnv) flushRedis(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return e.redis.Do(ctx, e.redis.B().Flushdb().Build()).Error()
}

// redisStore is the Redis projection's store under a prefix of its own.
func (e *evEnv) redisStore(prefix string) (*redis.Store, error) {
	return redis.New(e.redis, redis.Config{Prefix: "evb_" + prefix})
}

// evStream is a stream of one measurement, with its own name and topic.
type evStream struct {
	e      *evEnv
	name   string
	topic  string
	stream jetstream.Stream
}

// newStream creates a stream of cfg.Partitions partitions for measurement m.
func (e *evEnv) newStream(ctx context.Context, m string) (*evStream, error) {
	e.streamSeq++
	s := &evStream{e: e, name: fmt.Sprintf("EVBENCH_%s_%d", strings.ToUpper(m), e.streamSeq), topic: fmt.Sprintf("evb%d", e.streamSeq)}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	s.stream, err = evjs.EnsureStream(cctx, e.pub, evjs.StreamConfig{Name: s.name, Topic: s.topic, Partitions: e.cfg.Partitions})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// remove deletes the stream and its data.
func (s *evStream) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.e.pub.DeleteStream(ctx, s.name); err != nil {
		s.e.log.Warn("cannot delete stream", "stream", s.name, "err", err)
	}
}

// ingester is the SDK's publishing path onto s: validation, envelopes,
// and a Publish that returns once JetStream stored every event.
func (s *evStream) ingester() handlers.Ingester {
	pub := evjs.NewPublisher(s.e.pub, evjs.PublisherConfig{})
	return handlers.NewIngester(bus.NewAppender(pub, s.topic, s.e.cfg.Partitions), handlers.Config{})
}

// log reads s's partitions.
func (s *evStream) log() evjs.Log {
	return evjs.Log{Stream: s.stream, Topic: s.topic, Partitions: s.e.cfg.Partitions}
}

// newSubscriber builds the subscribers a runner of s asks for, as a
// replica does (infra/platform).
func (s *evStream) newSubscriber(start projector.StartAfter, window int) (message.Subscriber, error) {
	return evjs.NewSubscriber(s.e.sub, evjs.SubscriberConfig{Stream: s.name, StartAfter: start, Window: window, Logger: s.e.log})
}

// newReplaySubscriber builds the subscribers of a replay over s, as
// `evflow replay` does: one consumer for every partition (bus.Mux).
func (s *evStream) newReplaySubscriber(start projector.StartAfter, window int) (message.Subscriber, error) {
	return evjs.NewMux(s.e.sub, s.topic, evjs.SubscriberConfig{Stream: s.name, StartAfter: start, Window: window, Logger: s.e.log})
}

// runner returns a started runner of proj over s, with a replica's
// defaults (batches of up to projector.DefaultMaxBatch); Assign its
// partitions to start consuming.
func (s *evStream) runner(ctx context.Context, proj projections.Projector) (*projector.Runner, error) {
	r, err := projector.New(projector.Config{Topic: s.topic, Partitions: s.e.cfg.Partitions, Logger: s.e.log}, proj, s.newSubscriber)
	if err != nil {
		return nil, err
	}
	r.Start(ctx)
	return r, nil
}

// assignAll gives every partition to r.
func (s *evStream) assignAll(r *projector.Runner) {
	for p := range s.e.cfg.Partitions {
		r.Assign(p)
	}
}

// heads returns the last position of every partition.
func (s *evStream) heads(ctx context.Context) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return evjs.PartitionHeads(ctx, s.stream, s.topic, s.e.cfg.Partitions)
}

// catchUpTimeout bounds the wait for a projection of n events: generous
// (a floor of 2,000 events/s) but finite, so a stalled runner fails the
// run instead of hanging it.
func catchUpTimeout(n int) time.Duration {
	return 30*time.Second + time.Duration(n/2000)*time.Second
}

// caughtUp waits until r has applied every partition up to heads (its
// batch written and checkpointed), polling every millisecond. It fails
// after timeout naming a partition that is behind.
func caughtUp(ctx context.Context, r *projector.Runner, heads []uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		behind := -1
		for p, h := range heads {
			if r.Position(p) < h {
				behind = p
				break
			}
		}
		if behind < 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("projection %s stalled: partition %d applied up to %d of its head %d after %s (%d events applied in all)",
				r.Name(), behind, r.Position(behind), heads[behind], timeout, r.Applied())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stopRunner stops r within a bounded time.
func stopRunner(r *projector.Runner, log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Stop()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		log.Warn("projection runner did not stop within 30s", "projection", r.Name())
	}
}

// countRedis sums the launches the Redis projection counted on gen's day
// for gen's apps.
func countRedis(ctx context.Context, store *redis.Store, gen launchGen) (int64, error) {
	var sum int64
	for a := range gen.apps {
		n, _, err := store.Launches(ctx, gen.app(a), gen.dayKey())
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}
