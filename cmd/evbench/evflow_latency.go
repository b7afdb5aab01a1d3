package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/projections"
)

// The latency run's publishers: an SDK sends what is waiting, in small
// batches, from a few goroutines.
const (
	latencySenders = 8
	latencyBatch   = 50
)

// measureLatency is evflow.latency.p50 and evflow.latency.p99: on a fresh
// stream with a runner of the Redis projection consuming every partition
// (warmed up first), launches are published at cfg.Rate for
// cfg.LatencyWarm, unrecorded, then cfg.LatencyFor, paced in 1 ms ticks
// (util.go's paced), as the raw run does. Each launch
// carries its intended send time as its time (At, and so the envelope's
// OccurredAt); latencySenders goroutines ingest what is waiting, in
// batches of up to latencyBatch, through the SDK path. The projection is
// wrapped so that, when a batch's Apply returns (its Lua writes and its
// checkpoint done in Redis), each of its launches records now − its
// intended send time: the latency includes any lag of the pacer and the
// senders, the publish and its ack, delivery, batching, the writes and
// the checkpoint. The figures are the 50th and 99th percentiles of every
// launch sent, once all of them were projected.
func measureLatency(ctx context.Context, e *evEnv, r *results) error {
	s, err := e.newStream(ctx, "latency")
	if err != nil {
		return err
	}
	defer s.remove()
	gen := e.launchGen("latency", backlogApps)
	store, err := e.redisStore("latency")
	if err != nil {
		return err
	}
	timed := &timedProjector{Projector: projections.NewRedis(store)}
	run, err := s.runner(ctx, timed)
	if err != nil {
		return err
	}
	defer stopRunner(run, e.log)
	s.assignAll(run)
	ing := s.ingester()
	if err := warmUp(ctx, s, run, ing, gen); err != nil {
		return err
	}
	timed.reset(time.Now().Add(e.cfg.LatencyWarm))

	stop := startProfile("latency", e.log)
	sent, err := sendPaced(ctx, e.cfg, ing, gen)
	if err == nil {
		err = timed.await(ctx, sent, catchUpTimeout(sent))
	}
	stop()
	if err != nil {
		return err
	}
	ps, err := percentiles(timed.samples, 50, 99)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("publish → projected (Redis) at %d/s", e.cfg.Rate)
	r.add("evflow.latency.p50", "evflow", name+", p50", ps[0], "ms")
	r.add("evflow.latency.p99", "evflow", name+", p99", ps[1], "ms")
	return nil
}

// sendPaced publishes launches at cfg.Rate for cfg.LatencyWarm and
// cfg.LatencyFor, each with its intended send time, and returns how many it
// sent once all were acked.
func sendPaced(ctx context.Context, cfg config, ing handlers.Ingester, gen launchGen) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan handlers.Launch, cfg.Rate)
	errs := make(chan error, latencySenders)
	var wg sync.WaitGroup
	for range latencySenders {
		wg.Go(func() {
			for l := range queue {
				b := append(make([]handlers.Launch, 0, latencyBatch), l)
			gather:
				for len(b) < latencyBatch {
					select {
					case l, ok := <-queue:
						if !ok {
							break gather
						}
						b = append(b, l)
					default:
						break gather
					}
				}
				if _, err := ing.Ingest(ctx, b); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
	seq := warmLaunches
	sent, err := paced(ctx, cfg.Rate, cfg.LatencyWarm+cfg.LatencyFor, func(at time.Time) error {
		select {
		case queue <- gen.launch(seq, at):
			seq++
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(queue)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return sent, err
}

// timedProjector records, for every launch of a batch its projector has
// applied, how long ago the launch was intended to be sent.
type timedProjector struct {
	projections.Projector
	mu      sync.Mutex
	from    time.Time // launches intended before it are counted, not sampled
	applied int
	samples []time.Duration
}

// Apply implements projections.Projector: it applies the batch, then
// records its launches' latencies.
func (t *timedProjector) Apply(ctx context.Context, partition int, batch []projections.Event) error {
	if err := t.Projector.Apply(ctx, partition, batch); err != nil {
		return err
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range batch {
		if l, ok := e.Payload.(*events.AppLaunched); ok {
			t.applied++
			if !l.At.Before(t.from) {
				t.samples = append(t.samples, now.Sub(l.At))
			}
		}
	}
	return nil
}

// reset forgets what was recorded so far; launches intended from on are
// sampled.
func (t *timedProjector) reset(from time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.samples, t.applied, t.from = nil, 0, from
}

// await waits until n launches were recorded; more than n means a launch
// was applied twice.
func (t *timedProjector) await(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		t.mu.Lock()
		got := t.applied
		t.mu.Unlock()
		switch {
		case got == n:
			return nil
		case got > n:
			return fmt.Errorf("%d launches projected, %d sent: some twice", got, n)
		case time.Now().After(deadline):
			return fmt.Errorf("%d of %d launches projected after %s", got, n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
