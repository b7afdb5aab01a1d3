package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Streams and subjects of the naive baseline, each deleted afterwards with
// its consumers. A Watermill topic is a NATS subject: the baseline
// publishes to and subscribes from one topic per partition,
// <topic>.<partition>, on a stream created beforehand (watermill-nats'
// AutoProvision would name the stream after the topic, and a stream name
// may not hold dots).
const (
	naivePublishStream = "EVBENCH_NAIVE_PUBLISH"
	naivePublishTopic  = "naivepub"
	naiveConsumeStream = "EVBENCH_NAIVE_CONSUME"
	naiveConsumeTopic  = "naive"
	// naivePublishMax and naiveConsumeMax cap the events of the naive runs
	// (a rate is what is measured, and the baseline is slow).
	naivePublishMax = 20_000
	naiveConsumeMax = 50_000
)

// measureNaive measures the naive Watermill baseline: naive.publish and
// naive.consume. It is what a Watermill user writes from the
// documentation of watermill-nats v2 (pkg/nats, JetStream) and a rueidis
// Lua call per message, with Watermill's defaults.
func measureNaive(ctx context.Context, st *stand, cfg config, r *results) error {
	nc, err := rawConnect(st, "evbench-naive-admin")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	n := min(cfg.Events, naivePublishMax)
	collect()
	took, err := naivePublish(ctx, st, js, n, cfg.Partitions)
	if err != nil {
		return fmt.Errorf("naive publish: %w", err)
	}
	r.add("naive.publish", "naive", "watermill-nats publish, one message a call (TrackMsgId)", rate(n, took), "events/s")
	n = min(cfg.Events, naiveConsumeMax)
	collect()
	if took, err = naiveConsume(ctx, st, js, n, cfg.Partitions); err != nil {
		return fmt.Errorf("naive consume: %w", err)
	}
	r.add("naive.consume", "naive", "Watermill Router, one Lua call a message", rate(n, took), "events/s")
	return nil
}

// naivePublish publishes n events with a watermill-nats Publisher
// (JetStream, TrackMsgId: the message UUID is the JetStream msg id), one
// message per Publish call, one call after another: each waits for its
// JetStream ack. It returns how long the n calls took. Method of
// naive.publish.
func naivePublish(ctx context.Context, st *stand, js jetstream.JetStream, n, partitions int) (time.Duration, error) {
	stream, err := rawCreateStream(ctx, js, naivePublishStream, naivePublishTopic)
	if err != nil {
		return 0, err
	}
	defer rawDeleteStream(js, naivePublishStream)
	pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
		URL:       st.NATSURL(),
		Marshaler: &wmnats.NATSMarshaler{},
		JetStream: wmnats.JetStreamConfig{TrackMsgId: true},
	}, watermill.NopLogger{})
	if err != nil {
		return 0, err
	}
	defer pub.Close()
	bound := rawBound(n)
	start := time.Now()
	for i := range n {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if time.Since(start) > bound {
			return 0, fmt.Errorf("published %d of %d events in %s: too slow", i, n, bound)
		}
		msg := message.NewMessage(watermill.NewUUID(), payload)
		msg.SetContext(ctx)
		if err := pub.Publish(naivePublishTopic+"."+strconv.Itoa(i%partitions), msg); err != nil {
			return 0, fmt.Errorf("publish event %d: %w", i, err)
		}
	}
	took := time.Since(start)
	if err := rawCheckStored(ctx, stream, n); err != nil {
		return 0, err
	}
	return took, nil
}

// naiveConsume drains a pre-filled stream of n Watermill messages with a
// Watermill Router: one handler per partition topic, each on its own
// durable JetStream consumer (so each partition keeps its order, as
// evflow's do: what a user who needs per-aggregate order writes), all
// on one watermill-nats Subscriber with its defaults (push consumers,
// synchronous ack after the handler returns). Each handler makes one
// rueidis call per message: [rawIdempotentLua] with the message UUID as
// dedup key and a per-partition counter. It returns the time from starting
// the router until every message was applied once (counted when the script
// applies it, so a redelivery is not counted twice). Method of
// naive.consume.
func naiveConsume(ctx context.Context, st *stand, js jetstream.JetStream, n, partitions int) (time.Duration, error) {
	stream, err := rawCreateStream(ctx, js, naiveConsumeStream, naiveConsumeTopic)
	if err != nil {
		return 0, err
	}
	defer rawDeleteStream(js, naiveConsumeStream)
	if err := naivePrefill(ctx, st, n, partitions); err != nil {
		return 0, fmt.Errorf("pre-fill: %w", err)
	}
	if err := rawCheckStored(ctx, stream, n); err != nil {
		return 0, err
	}
	rc, err := rawRedisConnect(st, false)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if err := rawIdempotentLua.Exec(ctx, rc, []string{"naive:warm", "naive:warmcount"}, []string{rawDedupTTL}).Error(); err != nil {
		return 0, fmt.Errorf("load the Lua script: %w", err)
	}

	sub, err := naiveSubscriber(st)
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NopLogger{})
	if err != nil {
		return 0, err
	}
	var applied atomic.Int64
	done := make(chan struct{})
	for p := range partitions {
		counter := "naive:count:" + strconv.Itoa(p)
		router.AddConsumerHandler("naive-"+strconv.Itoa(p), naiveConsumeTopic+"."+strconv.Itoa(p), sub, func(msg *message.Message) error {
			v, err := rawIdempotentLua.Exec(msg.Context(), rc, []string{"naive:seen:" + msg.UUID, counter}, []string{rawDedupTTL}).AsInt64()
			if err != nil {
				return err // Nack: redelivered
			}
			if v > 0 && applied.Add(1) == int64(n) {
				close(done)
			}
			return nil
		})
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var runErr error
	stopped := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(stopped)
		runErr = router.Run(rctx)
	}()
	defer func() {
		_ = router.Close()
		<-stopped
	}()
	bound := rawBound(n)
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-done:
	case <-stopped:
		return 0, fmt.Errorf("the Router stopped with %d of %d messages applied: %v", applied.Load(), n, runErr)
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.C:
		return 0, fmt.Errorf("the Router applied %d of %d messages in %s", applied.Load(), n, bound)
	}
	return time.Since(start), nil
}

// naiveSubscriber is a watermill-nats Subscriber as its documentation
// shows for JetStream: deliver all, explicit ack (sent synchronously after
// the handler returns, AckAsync being off by default), one subscription
// per Subscribe call, and a durable consumer per topic (a durable name may
// not hold dots).
func naiveSubscriber(st *stand) (*wmnats.Subscriber, error) {
	return wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL:         st.NATSURL(),
		Unmarshaler: &wmnats.NATSMarshaler{},
		JetStream: wmnats.JetStreamConfig{
			SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
			DurablePrefix:    "naive",
			DurableCalculator: func(prefix, topic string) string {
				return prefix + "-" + strings.ReplaceAll(topic, ".", "-")
			},
		},
	}, watermill.NopLogger{})
}

// naivePrefill publishes n messages as watermill-nats' publisher would
// write them (its NATSMarshaler, the UUID as msg id), round-robin over the
// partition topics, with async publish so that the pre-fill takes little
// time; it returns once all are acknowledged.
func naivePrefill(ctx context.Context, st *stand, n, partitions int) error {
	nc, err := rawConnect(st, "evbench-naive-prefill")
	if err != nil {
		return err
	}
	defer nc.Close()
	var failed atomic.Int64
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(rawMaxPending),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		return err
	}
	var m wmnats.NATSMarshaler
	for i := range n {
		msg, err := m.Marshal(naiveConsumeTopic+"."+strconv.Itoa(i%partitions), message.NewMessage(watermill.NewUUID(), payload))
		if err != nil {
			return err
		}
		if _, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(msg.Header.Get(wmnats.WatermillUUIDHdr)), jetstream.WithStallWait(10*time.Second)); err != nil {
			return fmt.Errorf("publish message %d: %w", i, err)
		}
	}
	if err := rawAwait(ctx, js.PublishAsyncComplete(), rawBound(n), "the pre-fill's acks",
		func() string { return strconv.Itoa(js.PublishAsyncPending()) + " pending" }); err != nil {
		return err
	}
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d of %d publishes failed", f, n)
	}
	return nil
}
