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
// FerretDB, with the store configured as a replica on MongoDB configures it
// (position conditions in the writes' filters, bulks of up to 500). The
// driver's command monitor (mongo.CommandCounter) counts every command
// started from the moment the partitions are assigned (checkpoint reads
// included) until every partition reached its head: one command, one round
// trip. The figure is events applied ÷ commands: how many launches one
// round trip carries when the projection is saturated (full batches of
// projector.DefaultMaxBatch). The number of commands is a property of
// evflow's MongoDB code path, not of the server, so FerretDB stands in
// for MongoDB here. It checks that the counters sum to the launches
// published.
//
// evflow.mongo.per_trip.ferret (no target) is the same on the path a
// replica takes on FerretDB (mongo.FerretConfig: writes serialized,
// filters on _id alone, so positions read before each write, bulks of up
// to 16).
func measureMongo(ctx context.Context, e *evEnv, r *results) error {
	n := min(e.cfg.Events, mongoMaxEvents)
	perTrip, err := mongoDrain(ctx, e, "mongo", evmongo.Config{}, n)
	if err != nil {
		return err
	}
	r.add("evflow.mongo.per_trip", "evflow", fmt.Sprintf("MongoDB events per round trip (daily_stats, %d apps, MongoDB path)", mongoApps), perTrip, "events/trip")
	perTrip, err = mongoDrain(ctx, e, "ferret", evmongo.FerretConfig(evmongo.Config{}), n/2)
	if err != nil {
		return err
	}
	r.add("evflow.mongo.per_trip.ferret", "evflow", fmt.Sprintf("MongoDB events per round trip (daily_stats, %d apps, FerretDB path)", mongoApps), perTrip, "events/trip")
	return nil
}

// mongoDrain drains n launches into daily_stats with the store configured
// by mcfg and returns the events per command.
func mongoDrain(ctx context.Context, e *evEnv, name string, mcfg evmongo.Config, n int) (float64, error) {
	uri, err := e.st.MongoURI()
	if err != nil {
		return 0, err
	}
	var counter evmongo.CommandCounter
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, db, err := evmongo.Connect(cctx, uri, "evbench_"+name, options.Client().SetMonitor(counter.Monitor()))
	if err != nil {
		return 0, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.Drop(dctx); err != nil {
			e.log.Warn("cannot drop the measurement's database", "err", err)
		}
		_ = client.Disconnect(dctx)
	}()
	store, err := evmongo.NewStore(db, mcfg)
	if err != nil {
		return 0, err
	}

	s, err := e.newStream(ctx, name)
	if err != nil {
		return 0, err
	}
	defer s.remove()
	gen := e.launchGen(name, mongoApps)
	if _, err := ingest(ctx, s.ingester().Ingest, publishInflight, fromSlice(gen.batches(0, n, launchBatch))); err != nil {
		return 0, fmt.Errorf("fill: %w", err)
	}
	heads, err := s.heads(ctx)
	if err != nil {
		return 0, err
	}
	run, err := s.runner(ctx, projections.NewDailyStats(store))
	if err != nil {
		return 0, err
	}
	defer stopRunner(run, e.log)

	counter.Reset()
	stop := startProfile(name, e.log)
	began := time.Now()
	s.assignAll(run)
	err = caughtUp(ctx, run, heads, mongoTimeout)
	took := time.Since(began)
	stop()
	trips := counter.Total()
	if err != nil {
		return 0, err
	}
	e.log.Info("mongo drain", "path", name, "events", n, "took", took.Round(time.Millisecond), "commands", counter.Snapshot())
	if err := checkDaily(ctx, store, gen, n); err != nil {
		return 0, err
	}
	if trips == 0 {
		return 0, fmt.Errorf("no MongoDB command counted")
	}
	return float64(n) / float64(trips), nil
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
