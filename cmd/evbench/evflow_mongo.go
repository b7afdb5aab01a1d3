package main

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/options"

	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/projections"
)

// The MongoDB measurement's launches: apps of a mid-sized platform, one
// day, and no more events than FerretDB drains in well under a minute.
const (
	mongoApps      = 50
	mongoMaxEvents = 100_000
	mongoTimeout   = 90 * time.Second
)

// measureMongo is evflow.mongo.per_trip: min(cfg.Events, mongoMaxEvents)
// launches of mongoApps apps on one day are published (untimed), then a
// runner of the daily_stats projection drains them into MongoDB, here
// FerretDB, with the store configured as a replica configures it
// (mongo.FerretConfig when the server is FerretDB: writes serialized,
// filters on _id, bulks of up to 16). The driver's command monitor
// (mongo.CommandCounter) counts every command started from the moment the
// partitions are assigned (checkpoint reads included) until every
// partition reached its head: one command, one round trip. The figure is
// events applied ÷ commands: how many launches one round trip carries
// when the projection is saturated (full batches of
// projector.DefaultMaxBatch). It checks that the counters sum to the
// launches published.
func measureMongo(ctx context.Context, e *evEnv, r *results) error {
	uri, err := e.st.MongoURI()
	if err != nil {
		return err
	}
	var counter evmongo.CommandCounter
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, db, err := evmongo.Connect(cctx, uri, "evbench_evflow", options.Client().SetMonitor(counter.Monitor()))
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.Drop(dctx); err != nil {
			e.log.Warn("cannot drop the measurement's database", "err", err)
		}
		_ = client.Disconnect(dctx)
	}()
	mcfg := evmongo.Config{}
	if ferret, err := evmongo.IsFerretDB(cctx, db); err != nil {
		return err
	} else if ferret {
		mcfg = evmongo.FerretConfig(mcfg)
	}
	store, err := evmongo.NewStore(db, mcfg)
	if err != nil {
		return err
	}

	s, err := e.newStream(ctx, "mongo")
	if err != nil {
		return err
	}
	defer s.remove()
	gen := e.launchGen("mongo", mongoApps)
	n := min(e.cfg.Events, mongoMaxEvents)
	if _, err := ingest(ctx, s.ingester().Ingest, publishInflight, fromSlice(gen.batches(0, n, launchBatch))); err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	heads, err := s.heads(ctx)
	if err != nil {
		return err
	}
	run, err := s.runner(ctx, projections.NewDailyStats(store))
	if err != nil {
		return err
	}
	defer stopRunner(run, e.log)

	counter.Reset()
	stop := startProfile("mongo", e.log)
	began := time.Now()
	s.assignAll(run)
	err = caughtUp(ctx, run, heads, mongoTimeout)
	took := time.Since(began)
	stop()
	trips := counter.Total()
	if err != nil {
		return err
	}
	e.log.Info("mongo drain", "events", n, "took", took.Round(time.Millisecond), "commands", counter.Snapshot())
	if err := checkDaily(ctx, store, gen, n); err != nil {
		return err
	}
	if trips == 0 {
		return fmt.Errorf("no MongoDB command counted")
	}
	name := fmt.Sprintf("MongoDB events per round trip (daily_stats, %d apps, FerretDB)", mongoApps)
	r.add("evflow.mongo.per_trip", "evflow", name, float64(n)/float64(trips), "events/trip")
	return nil
}

// checkDaily checks that the daily counters of gen's apps sum to want.
func checkDaily(ctx context.Context, store *evmongo.Store, gen launchGen, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var sum int64
	for a := range gen.apps {
		n, err := store.DailyLaunches(ctx, gen.app(a), gen.dayKey())
		if err != nil {
			return err
		}
		sum += n
	}
	if sum != int64(want) {
		return fmt.Errorf("daily_stats counted %d launches, want %d: not exactly once", sum, want)
	}
	return nil
}
