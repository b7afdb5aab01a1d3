package main

import (
	"context"
	"fmt"
	"time"

	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/redis"
	"github.com/evflow/evflow/infra/replay"
	"github.com/evflow/evflow/projections"
)

// measurePublish is evflow.publish: cfg.Events launches over backlogApps
// apps, built beforehand in batches of launchBatch (an SDK's data),
// ingested by publishInflight goroutines with one batch in flight each
// through handlers.Ingester → bus.Appender → the JetStream publisher,
// which returns once JetStream stored (acked) every event of the batch.
// The figure is launches acknowledged per second, from the first Ingest
// to the last ack; it checks that the stream then holds them all, once.
func measurePublish(ctx context.Context, e *evEnv, s *evStream, gen launchGen, r *results) error {
	batches := gen.batches(0, e.cfg.Events, launchBatch)
	ing := s.ingester()
	stop := startProfile("publish", e.log)
	began := time.Now()
	acked, err := ingest(ctx, ing.Ingest, publishInflight, fromSlice(batches))
	took := time.Since(began)
	stop()
	if err != nil {
		return err
	}
	stored, err := s.log().Messages(ctx)
	if err != nil {
		return err
	}
	if acked != e.cfg.Events || stored != uint64(e.cfg.Events) {
		return fmt.Errorf("%d launches acknowledged and %d stored, want %d", acked, stored, e.cfg.Events)
	}
	r.add("evflow.publish", "evflow", fmt.Sprintf("SDK publish, acked (Ingest, batches of %d, %d in flight)", launchBatch, publishInflight),
		rate(acked, took), "events/s")
	return nil
}

// measureDrain is evflow.drain: with the backlog of measurePublish in the
// stream, a runner of the Redis projection (as a replica runs it: one
// ordered consumer per partition from its checkpoint, batches of up to
// projector.DefaultMaxBatch, each applied with Lua scripts that check
// positions, then checkpointed, then acked) is started, and the clock
// runs from assigning it all partitions until every partition's applied
// position reached its head. The figure is events per second over that
// time. It then checks exactly-once and order: the runner applied
// cfg.Events events, and the launch counters sum to cfg.Events (each
// counter counts only positions above the last one it counted, so a
// launch applied twice or out of order would make the sum differ).
func measureDrain(ctx context.Context, e *evEnv, s *evStream, gen launchGen, r *results) error {
	heads, err := s.heads(ctx)
	if err != nil {
		return err
	}
	store, err := e.redisStore("drain")
	if err != nil {
		return err
	}
	run, err := s.runner(ctx, projections.NewRedis(store))
	if err != nil {
		return err
	}
	defer stopRunner(run, e.log)
	stop := startProfile("drain", e.log)
	began := time.Now()
	s.assignAll(run)
	err = caughtUp(ctx, run, heads, catchUpTimeout(e.cfg.Events))
	took := time.Since(began)
	stop()
	if err != nil {
		return err
	}
	if err := checkRedis(ctx, run, store, gen, e.cfg.Events); err != nil {
		return err
	}
	r.add("evflow.drain", "evflow", "backlog drain into Redis, exactly-once, ordered", rate(e.cfg.Events, took), "events/s")
	return nil
}

// checkRedis checks that run applied want events and that the Redis
// projection counted each once.
func checkRedis(ctx context.Context, run *projector.Runner, store *redis.Store, gen launchGen, want int) error {
	if got := run.Applied(); got != uint64(want) {
		return fmt.Errorf("the runner applied %d events, want %d", got, want)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	counted, err := countRedis(ctx, store, gen)
	if err != nil {
		return err
	}
	if counted != int64(want) {
		return fmt.Errorf("the Redis projection counted %d launches, want %d: not exactly once", counted, want)
	}
	return nil
}

// measureReplay is evflow.replay: `evflow replay --projection redis`
// in-process (replay.Run, as infra/replay's benchmark drives it) over the
// backlog of measurePublish, from the beginning, into a new generation of
// the Redis projection: it creates the generation record, builds the
// generation with a runner over every partition until each reached its
// head, verifies the checkpoints, swaps the generation in and removes the
// old one (grace 1 ms). The figure is the replay's own summary, events
// rebuilt over its whole duration; it checks that the generation swapped
// in counts every launch once.
func measureReplay(ctx context.Context, e *evEnv, s *evStream, gen launchGen, r *results) error {
	gens := redis.NewGenerations(e.redis)
	var live *redis.Store
	target := replay.Target{Name: projections.RedisName, Store: gens, Open: func(g string) (projections.Projector, error) {
		st, err := redis.New(e.redis, redis.Config{Prefix: redis.PrefixOf(g)})
		live = st
		return projections.NewRedis(st), err
	}}
	cfg := replay.Config{
		Log: s.log(), NewSubscriber: s.newReplaySubscriber, Topic: s.topic, Partitions: e.cfg.Partitions,
		Grace: time.Millisecond, Logger: e.log,
	}
	rctx, cancel := context.WithTimeout(ctx, catchUpTimeout(e.cfg.Events))
	defer cancel()
	stop := startProfile("replay", e.log)
	sum, err := replay.Run(rctx, cfg, target)
	stop()
	if err != nil {
		return err
	}
	if sum.Events != uint64(e.cfg.Events) {
		return fmt.Errorf("replayed %d events, want %d", sum.Events, e.cfg.Events)
	}
	counted, err := countRedis(rctx, live, gen)
	if err != nil {
		return err
	}
	if counted != int64(e.cfg.Events) {
		return fmt.Errorf("the rebuilt generation counted %d launches, want %d", counted, e.cfg.Events)
	}
	r.add("evflow.replay", "evflow", "replay rebuild into Redis (new generation, swapped in)", sum.Rate(), "events/s")
	return nil
}
