package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/projections"
)

// warmLaunches is how many launches a live run publishes, and waits to see
// projected, before its clock starts: every partition's consumer is then
// established, so the figures are of a running system, not of its start.
const warmLaunches = 2 * backlogApps

// measureLive is evflow.live: on a fresh stream a runner of the Redis
// projection consumes every partition while publishInflight goroutines
// ingest batches of launchBatch launches as fast as they are acked (the
// SDK path of measurePublish, the batches built as they go), for
// cfg.Live. The figure is the events the runner applied (written and
// checkpointed in Redis) during that time, per second: what evflow
// sustains end to end with the publisher running, not a backlog drained
// afterwards. It then waits for the projection to catch up and checks
// that it counted every acknowledged launch once.
func measureLive(ctx context.Context, e *evEnv, r *results) error {
	s, err := e.newStream(ctx, "live")
	if err != nil {
		return err
	}
	defer s.remove()
	gen := e.launchGen("live", backlogApps)
	store, err := e.redisStore("live")
	if err != nil {
		return err
	}
	run, err := s.runner(ctx, projections.NewRedis(store))
	if err != nil {
		return err
	}
	defer stopRunner(run, e.log)
	s.assignAll(run)
	ing := s.ingester()
	if err := warmUp(ctx, s, run, ing, gen); err != nil {
		return err
	}

	seq := atomic.Int64{}
	seq.Store(warmLaunches)
	began := time.Now()
	deadline := began.Add(e.cfg.Live)
	next := func() []handlers.Launch {
		if time.Now().After(deadline) {
			return nil
		}
		i := int(seq.Add(launchBatch)) - launchBatch
		return gen.batches(i, launchBatch, launchBatch)[0]
	}
	applied := run.Applied()
	stop := startProfile("live", e.log)
	published, err := ingest(ctx, ing.Ingest, publishInflight, next)
	took := time.Since(began)
	projected := run.Applied() - applied
	stop()
	if err != nil {
		return err
	}
	e.log.Info("live run", "published/s", int(rate(published, took)), "projected/s", int(rate(int(projected), took)),
		"lag", published-int(projected))

	heads, err := s.heads(ctx)
	if err != nil {
		return err
	}
	if err := caughtUp(ctx, run, heads, catchUpTimeout(published)); err != nil {
		return fmt.Errorf("after the live run: %w", err)
	}
	if err := checkRedis(ctx, run, store, gen, warmLaunches+published); err != nil {
		return err
	}
	r.add("evflow.live", "evflow", fmt.Sprintf("live end to end, projected while publishing (%s)", e.cfg.Live), rate(int(projected), took), "events/s")
	return nil
}

// warmUp ingests launches [0, warmLaunches) of gen, which cover every
// app of the live runs, and waits until run has projected them.
func warmUp(ctx context.Context, s *evStream, run *projector.Runner, ing handlers.Ingester, gen launchGen) error {
	if _, err := ingest(ctx, ing.Ingest, 1, fromSlice(gen.batches(0, warmLaunches, launchBatch))); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	heads, err := s.heads(ctx)
	if err != nil {
		return err
	}
	if err := caughtUp(ctx, run, heads, catchUpTimeout(warmLaunches)); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	return nil
}
