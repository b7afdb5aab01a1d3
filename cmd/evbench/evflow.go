package main

import (
	"context"
	"fmt"
	"time"
)

// measureEvflow measures evflow itself, used as a user of the platform
// would use it: launches go in through handlers.Ingester over bus.Appender
// and the JetStream publisher (the SDK's path), and come out through
// projector.Runner, the runner every replica runs, into the Redis and
// MongoDB projections. It adds evflow.publish, evflow.drain, evflow.live,
// evflow.latency.p50, evflow.latency.p99, evflow.mongo.per_trip,
// evflow.replay and, without a target, evflow.publish.http.
//
// Every measurement has a stream of its own (16 partitions, file storage)
// and a Redis key prefix of its own in a Redis database no other section
// uses; each removes what it made before the next starts. The stream
// filled by the publish run is the backlog the drain and the replay read,
// so those three measure the same cfg.Events launches.
//
// Setting the environment variable EVBENCH_CPUPROFILE=PREFIX writes a CPU
// profile of each measurement to PREFIX-<measurement>.pprof (see
// evflow_profile.go); the embedded nats-server runs in this process, so
// its work shows in them, redis-server's and FerretDB's SQLite's partly.
func measureEvflow(ctx context.Context, st *stand, cfg config, r *results) error {
	e, err := newEvEnv(ctx, st, cfg)
	if err != nil {
		return err
	}
	defer e.close()
	for _, m := range []struct {
		name string
		run  func(context.Context, *evEnv, *results) error
	}{
		{"backlog", measureBacklog}, // publish, drain, replay
		// The latency run comes before the live one, as the raw latency
		// run comes after the raw throughput runs: right after the live
		// run, whose aftermath collect cannot wait out entirely (a
		// million-message stream removed, on a virtual disk), its p99
		// was twice what it is otherwise.
		{"latency", measureLatency},
		{"live", measureLive},
		{"mongo", measureMongo},
		{"http", measureHTTP},
	} {
		began := time.Now()
		collect()
		if err := m.run(ctx, e, r); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if err := e.flushRedis(ctx); err != nil {
			return fmt.Errorf("%s: clean up: %w", m.name, err)
		}
		st.log.Info("evflow measured", "measurement", m.name, "took", time.Since(began).Round(time.Millisecond))
	}
	return nil
}

// measureBacklog fills a stream with cfg.Events launches through the SDK
// path (evflow.publish), drains it into the Redis projection
// (evflow.drain), then rebuilds that projection from it with a replay
// (evflow.replay).
func measureBacklog(ctx context.Context, e *evEnv, r *results) error {
	s, err := e.newStream(ctx, "backlog")
	if err != nil {
		return err
	}
	defer s.remove()
	gen := e.launchGen("backlog", backlogApps)
	if err := measurePublish(ctx, e, s, gen, r); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	collect()
	if err := measureDrain(ctx, e, s, gen, r); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	if err := e.flushRedis(ctx); err != nil {
		return err
	}
	collect()
	if err := measureReplay(ctx, e, s, gen, r); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}
