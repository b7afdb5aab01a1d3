package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// rawLatency publishes at cfg.Rate events/s for cfg.LatencyWarm and then
// cfg.LatencyFor (paced, see [paced]) with JetStream async publish on one
// connection, each 256-byte event carrying its intended send time in its
// first 8 bytes, and receives them with an ordered consumer on another
// connection, started before the first publish. A sample is receive time −
// intended send time, so a publisher falling behind its schedule shows as
// latency; the events of the warm-up give none. It returns the p50 and p99
// in milliseconds, once every event has arrived. Method of
// raw.latency.p50 and raw.latency.p99, to compare with evflow's publish →
// projected latency at the same rate.
func rawLatency(ctx context.Context, st *stand, cfg config) ([]float64, error) {
	pc, err := rawConnect(st, "evbench-raw-latency-pub")
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	sc, err := rawConnect(st, "evbench-raw-latency-sub")
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	var failed atomic.Int64
	pjs, err := jetstream.New(pc,
		jetstream.WithPublishAsyncMaxPending(rawMaxPending),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		return nil, err
	}
	sjs, err := jetstream.New(sc)
	if err != nil {
		return nil, err
	}
	stream, err := rawCreateStream(ctx, sjs, rawLatencyStream, rawLatencyTopic)
	if err != nil {
		return nil, err
	}
	defer rawDeleteStream(sjs, rawLatencyStream)
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	expected := int(float64(cfg.Rate)*cfg.LatencyFor.Seconds()) + 1
	var mu sync.Mutex
	samples := make([]time.Duration, 0, expected)
	got := 0
	from := time.Now().Add(cfg.LatencyWarm) // set again just before the first publish
	cc, err := oc.Consume(func(m jetstream.Msg) {
		at := time.Unix(0, int64(binary.BigEndian.Uint64(m.Data())))
		d := time.Since(at)
		mu.Lock()
		got++
		if !at.Before(from) {
			samples = append(samples, d)
		}
		mu.Unlock()
	}, jetstream.PullMaxMessages(rawPullBatch))
	if err != nil {
		return nil, err
	}
	defer cc.Stop()
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return got
	}

	i := 0
	mu.Lock()
	from = time.Now().Add(cfg.LatencyWarm)
	mu.Unlock()
	sent, err := paced(ctx, cfg.Rate, cfg.LatencyWarm+cfg.LatencyFor, func(at time.Time) error {
		data := make([]byte, len(payload))
		copy(data, payload)
		binary.BigEndian.PutUint64(data, uint64(at.UnixNano()))
		_, err := pjs.PublishAsync(rawSubject(rawLatencyTopic, i, cfg.Partitions), data,
			jetstream.WithMsgID("lat-"+strconv.Itoa(i)), jetstream.WithStallWait(10*time.Second))
		i++
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := rawAwait(ctx, pjs.PublishAsyncComplete(), rawBound(sent), "the latency run's publish acks",
		func() string { return strconv.Itoa(pjs.PublishAsyncPending()) + " pending" }); err != nil {
		return nil, err
	}
	if n := failed.Load(); n > 0 {
		return nil, fmt.Errorf("%d of %d publishes failed", n, sent)
	}
	deadline := time.Now().Add(rawBound(sent))
	for received() < sent {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("received %d of %d events after %s", received(), sent, rawBound(sent))
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	return percentiles(samples, 50, 99)
}
