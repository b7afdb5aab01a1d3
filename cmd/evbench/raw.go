package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Streams, subjects and consumers of the raw measurements. Each measurement
// has its own stream, deleted afterwards with its consumers.
const (
	rawStream        = "EVBENCH_RAW"
	rawTopic         = "rawbench"
	rawLatencyStream = "EVBENCH_RAW_LATENCY"
	rawLatencyTopic  = "rawlatency"
	rawDurable       = "evbench-raw-consume"
	// rawMaxPending bounds the async publishes in flight.
	rawMaxPending = 4096
	// rawPullBatch is how many messages a pull consumer asks for at once.
	rawPullBatch = 2048
	// rawAggregates is how many aggregates the events are spread over.
	rawAggregates = 1024
)

// measureRaw measures the ceilings of the parts alone: raw.publish,
// raw.consume, raw.ordered, raw.redis, raw.latency.p50 and raw.latency.p99.
//
// Every event is 256 bytes ([payload]) on a file-storage stream whose
// subjects are partitioned like evflow's: <topic>.<partition>.app.<id>,
// with the partition a function of the aggregate id.
func measureRaw(ctx context.Context, st *stand, cfg config, r *results) error {
	nc, err := rawConnect(st, "evbench-raw")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	stream, err := rawCreateStream(ctx, js, rawStream, rawTopic)
	if err != nil {
		return err
	}
	defer rawDeleteStream(js, rawStream)

	collect()
	took, err := rawPublish(ctx, nc, rawTopic, cfg)
	if err != nil {
		return fmt.Errorf("raw publish: %w", err)
	}
	r.add("raw.publish", "raw", "JetStream async publish, acked (msg-id dedup)", rate(cfg.Events, took), "events/s")
	if err := rawCheckStored(ctx, stream, cfg.Events); err != nil {
		return err
	}
	collect()
	if took, err = rawConsume(ctx, st, cfg.Events); err != nil {
		return fmt.Errorf("raw consume: %w", err)
	}
	r.add("raw.consume", "raw", "JetStream durable pull consume, ack each", rate(cfg.Events, took), "events/s")
	collect()
	if took, err = rawOrdered(ctx, st, cfg.Events); err != nil {
		return fmt.Errorf("raw ordered read: %w", err)
	}
	r.add("raw.ordered", "raw", "JetStream ordered consumer read (replay, no acks)", rate(cfg.Events, took), "events/s")
	collect()
	if took, err = rawRedis(ctx, st, cfg.Events); err != nil {
		return fmt.Errorf("raw redis: %w", err)
	}
	r.add("raw.redis", "raw", "Redis idempotent Lua op (SET NX + INCR), auto-pipelined", rate(cfg.Events, took), "ops/s")
	collect()
	p, err := rawLatency(ctx, st, cfg)
	if err != nil {
		return fmt.Errorf("raw latency: %w", err)
	}
	r.add("raw.latency.p50", "raw", fmt.Sprintf("publish → receive p50 at %d/s", cfg.Rate), p[0], "ms")
	r.add("raw.latency.p99", "raw", fmt.Sprintf("publish → receive p99 at %d/s", cfg.Rate), p[1], "ms")
	return nil
}

// rawPublish publishes n events with JetStream async publish, each with its
// own msg id (so the stream's duplicate window checks every one), at most
// rawMaxPending unacknowledged, and returns how long it took until the
// last one was acknowledged. Method of raw.publish.
func rawPublish(ctx context.Context, nc *nats.Conn, topic string, cfg config) (time.Duration, error) {
	var failed atomic.Int64
	var firstErr atomic.Value
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(rawMaxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}))
	if err != nil {
		return 0, err
	}
	bound := rawBound(cfg.Events)
	start := time.Now()
	for i := range cfg.Events {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			if time.Since(start) > bound {
				return 0, fmt.Errorf("published %d of %d events in %s: too slow", i, cfg.Events, bound)
			}
		}
		subj := rawSubject(topic, i, cfg.Partitions)
		if _, err := js.PublishAsync(subj, payload, jetstream.WithMsgID("raw-"+strconv.Itoa(i)), jetstream.WithStallWait(bound)); err != nil {
			return 0, fmt.Errorf("publish event %d: %w", i, err)
		}
	}
	if err := rawAwait(ctx, js.PublishAsyncComplete(), bound-time.Since(start), "the acks of the async publishes",
		func() string { return strconv.Itoa(js.PublishAsyncPending()) + " still pending" }); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if n := failed.Load(); n > 0 {
		return 0, fmt.Errorf("%d of %d publishes failed, the first with: %v", n, cfg.Events, firstErr.Load())
	}
	return took, nil
}

// rawConsume reads the n events of the pre-filled raw stream with a new
// durable pull consumer (explicit ack, Consume with batches of
// rawPullBatch), acknowledging each message on its own, and returns how
// long it took until the server had every ack (ack floor at n, none
// pending). Method of raw.consume, which is how DESIGN.md defines the
// ceiling: "JetStream durable pull consume, ack each (TCP loopback)".
func rawConsume(ctx context.Context, st *stand, n int) (time.Duration, error) {
	nc, stream, err := rawOpen(ctx, st, "evbench-raw-consume")
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       rawDurable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 4 * rawPullBatch,
	})
	if err != nil {
		return 0, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stream.DeleteConsumer(dctx, rawDurable)
	}()
	var acked, failed atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := m.Ack(); err != nil {
			failed.Add(1)
			return
		}
		if acked.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(rawPullBatch))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	bound := rawBound(n)
	if err := rawAwait(ctx, done, bound, "the durable consumer's acks", func() string {
		return fmt.Sprintf("%d acked, %d acks failed", acked.Load(), failed.Load())
	}); err != nil {
		return 0, err
	}
	if err := nc.FlushTimeout(bound); err != nil {
		return 0, err
	}
	if err := rawAckedAll(ctx, cons, n, bound); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// rawAckedAll waits until the server has recorded acks for the first n
// deliveries of cons and has none pending.
func rawAckedAll(ctx context.Context, cons jetstream.Consumer, n int, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.AckFloor.Consumer >= uint64(n) && info.NumAckPending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server recorded acks up to %d of %d (%d pending) after %s", info.AckFloor.Consumer, n, info.NumAckPending, bound)
		}
		time.Sleep(time.Millisecond)
	}
}

// rawOrdered reads the n events of the raw stream with an ordered consumer
// (ephemeral, no acks, flow-controlled by the client: how a replay reads),
// and returns how long it took until the last one arrived. Method of
// raw.ordered.
func rawOrdered(ctx context.Context, st *stand, n int) (time.Duration, error) {
	nc, stream, err := rawOpen(ctx, st, "evbench-raw-ordered")
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, err
	}
	var got atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	cc, err := oc.Consume(func(jetstream.Msg) {
		if got.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(rawPullBatch))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	if err := rawAwait(ctx, done, rawBound(n), "the ordered read", func() string {
		return fmt.Sprintf("%d of %d read", got.Load(), n)
	}); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// rawConnect connects to the stand's nats-server over TCP loopback.
// rawOpen connects as name and opens the raw stream.
func rawOpen(ctx context.Context, st *stand, name string) (*nats.Conn, jetstream.Stream, error) {
	nc, err := rawConnect(st, name)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err == nil {
		var stream jetstream.Stream
		if stream, err = js.Stream(ctx, rawStream); err == nil {
			return nc, stream, nil
		}
	}
	nc.Close()
	return nil, nil, err
}

func rawConnect(st *stand, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(st.NATSURL(), nats.Name(name))
	if err != nil {
		return nil, fmt.Errorf("connect to nats-server: %w", err)
	}
	return nc, nil
}

// rawCreateStream creates a file-storage stream named name on topic.> (the
// default two-minute duplicate window), replacing any left from before.
func rawCreateStream(ctx context.Context, js jetstream.JetStream, name, topic string) (jetstream.Stream, error) {
	if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("delete stream %s: %w", name, err)
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:      name,
		Subjects:  []string{topic + ".>"},
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", name, err)
	}
	return s, nil
}

// rawDeleteStream deletes a stream and its consumers, on its own timeout
// since the run's ctx may have ended.
func rawDeleteStream(js jetstream.JetStream, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, name)
}

// rawCheckStored fails unless stream holds exactly n messages: no publish
// was lost or taken for a duplicate.
func rawCheckStored(ctx context.Context, stream jetstream.Stream, n int) error {
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != uint64(n) {
		return fmt.Errorf("stream %s holds %d messages, published %d", info.Config.Name, info.State.Msgs, n)
	}
	return nil
}

// rawSubject is the subject of event i: <topic>.<partition>.app.<id>,
// spread over rawAggregates aggregates, the partition a function of the
// aggregate as in evflow.
func rawSubject(topic string, i, partitions int) string {
	agg := i % rawAggregates
	return topic + "." + strconv.Itoa(agg%partitions) + ".app.a" + strconv.Itoa(agg)
}

// rawBound is how long n events may take before a measurement fails
// instead of hanging: 30s plus 1ms an event (a floor of 1,000 events/s,
// far below any figure measured here).
func rawBound(n int) time.Duration {
	return 30*time.Second + time.Duration(n)*time.Millisecond
}

// rawAwait waits until done is closed, failing when ctx ends or after
// bound, with an error naming what and progress().
func rawAwait(ctx context.Context, done <-chan struct{}, bound time.Duration, what string, progress func() string) error {
	t := time.NewTimer(max(bound, time.Millisecond))
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w (%s)", what, ctx.Err(), progress())
	case <-t.C:
		return fmt.Errorf("waiting for %s: not done after %s (%s)", what, bound, progress())
	}
}
