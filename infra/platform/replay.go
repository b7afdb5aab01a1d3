package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/redis"
	"github.com/evflow/evflow/infra/replay"
	"github.com/evflow/evflow/projections"
)

// Projections names every projection, in the order they are replayed.
var Projections = []string{projections.AppsName, projections.DailyStatsName, projections.RedisName}

// ReplayOptions says what to replay and how.
type ReplayOptions struct {
	// Projections to rebuild, one after the other (see [Projections]).
	Projections []string
	// From is where the rebuilds start (see replay.From).
	From replay.From
	// DryRun only works out the plans.
	DryRun bool
	// Grace: see replay.Config.
	Grace time.Duration
	// Progress and ProgressEvery: see replay.Config.
	Progress      func(replay.Progress)
	ProgressEvery time.Duration
}

// Replay rebuilds projections of the replicas that cfg's --nats-url (or
// --kafka-brokers), --mongo-uri and --redis-addr point at, while they run. It returns the
// plans, and with DryRun false the summaries of the replays done.
func Replay(ctx context.Context, cfg config.Config, log *slog.Logger, opts ReplayOptions) ([]replay.Plan, []replay.Summary, error) {
	var errs []error
	for _, p := range opts.Projections {
		if !slices.Contains(Projections, p) {
			errs = append(errs, fmt.Errorf("--projection %q: not one of %v", p, Projections))
		}
		if p == projections.RedisName && !opts.From.Beginning() {
			// Its position guards live in keys apart from what they
			// guard, which a copy made while replicas write can split.
			errs = append(errs, fmt.Errorf("--from %s: the Redis projection is rebuilt from the beginning only (it replays in seconds)", opts.From))
		}
	}
	if cfg.RedisDB < 0 || cfg.RedisDB > 15 {
		errs = append(errs, fmt.Errorf("--redis-db %d: must be 0 to 15", cfg.RedisDB))
	}
	if cfg.MongoMaxBulk < 0 {
		errs = append(errs, fmt.Errorf("--mongo-max-bulk %d: must be 0 (the default) or more", cfg.MongoMaxBulk))
	}
	if cfg.MaxBatch < 1 || cfg.MaxBatch > 100000 {
		errs = append(errs, fmt.Errorf("--max-batch %d: must be 1 to 100000", cfg.MaxBatch))
	}
	if cfg.Linger < 0 || cfg.Linger > time.Second {
		errs = append(errs, fmt.Errorf("--linger %s: must be 0 to 1s", cfg.Linger))
	}
	if cfg.Bus == config.BusKafka && opts.From.Seq > 1 {
		errs = append(errs, fmt.Errorf("--from %s: a sequence is a JetStream stream position; on Kafka replay from the beginning or from a time", opts.From))
	}
	if cfg.Bus != config.BusKafka && cfg.NATSURL == "" {
		errs = append(errs, errors.New("--nats-url is required: replay reads the stream of running replicas"))
	}
	if cfg.Bus == config.BusKafka && cfg.KafkaBrokers == "" {
		errs = append(errs, errors.New("--kafka-brokers is required with --bus kafka: replay reads the topic of running replicas"))
	}
	if cfg.MongoURI == "" {
		errs = append(errs, errors.New("--mongo-uri is required: the MongoDB the replicas use"))
	}
	if err := cfg.ValidateSecurity(); err != nil {
		errs = append(errs, err)
	}
	redisCfg, external := cfg.Redis()
	if !external {
		errs = append(errs, errors.New("--redis-addr (or --redis-sentinels) is required: the Redis the replicas use"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, UsageError{err}
	}

	client, db, err := mongo.Connect(ctx, cfg.MongoURI, cfg.MongoDB)
	if err != nil {
		return nil, nil, fmt.Errorf("--mongo-uri: %w", err)
	}
	defer func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }()
	rb, err := openReplayBus(ctx, cfg, log, db)
	if err != nil {
		return nil, nil, err
	}
	defer rb.close()
	cfg.Partitions = rb.partitions
	dl := rb.deadLetters
	mcfg := mongo.Config{MaxBulk: cfg.MongoMaxBulk}
	if ferret, err := mongo.IsFerretDB(ctx, db); err != nil {
		return nil, nil, fmt.Errorf("--mongo-uri: %w", err)
	} else if ferret {
		mcfg = mongo.FerretConfig(mcfg)
	}
	mgens, err := mongo.NewGenerations(db, mcfg)
	if err != nil {
		return nil, nil, err
	}
	rc, err := redis.Connect(ctx, redisCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("--redis-addr/--redis-sentinels: %w", err)
	}
	defer rc.Close()

	docs := func(gen string) (*mongo.Store, error) {
		c := mcfg
		c.Suffix = gen
		return mongo.NewStore(db, c)
	}
	targets := map[string]replay.Target{
		projections.AppsName: {Name: projections.AppsName, Store: mgens, Open: func(gen string) (projections.Projector, error) {
			s, err := docs(gen)
			return projections.NewApps(s), err
		}},
		projections.DailyStatsName: {Name: projections.DailyStatsName, Store: mgens, Open: func(gen string) (projections.Projector, error) {
			s, err := docs(gen)
			return projections.NewDailyStats(s), err
		}},
		projections.RedisName: {Name: projections.RedisName, Store: redis.NewGenerations(rc), Volatile: true, Open: func(gen string) (projections.Projector, error) {
			c := hotConfig(cfg)
			c.Prefix = redis.PrefixOf(gen)
			s, err := redis.New(rc, c)
			return projections.NewRedis(s), err
		}},
	}
	rcfg := replay.Config{
		Log: rb.log, NewSubscriber: rb.newSubscriber, Topic: rb.topic, Partitions: cfg.Partitions, From: opts.From,
		MaxBatch: cfg.MaxBatch, Linger: projector.Lingering(cfg.Linger), DeadLetters: dl, Grace: opts.Grace,
		Progress: opts.Progress, ProgressEvery: opts.ProgressEvery, Logger: log,
	}
	for _, name := range opts.Projections {
		// A rebuild would park these letters' events again, and those of
		// their aggregates after them, as live processing did.
		n, err := dl.Count(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		if n > 0 {
			return nil, nil, fmt.Errorf("projection %s has %d dead letters waiting: redrive or purge them first (evflow dlq list --projection %s)", name, n, name)
		}
	}
	var plans []replay.Plan
	for _, name := range opts.Projections {
		plan, err := replay.Prepare(ctx, rcfg, targets[name])
		if err != nil {
			return plans, nil, err
		}
		plans = append(plans, plan)
	}
	if opts.DryRun {
		return plans, nil, nil
	}
	var sums []replay.Summary
	for _, name := range opts.Projections {
		sum, err := replay.Run(ctx, rcfg, targets[name])
		if err != nil {
			return plans, sums, err
		}
		sums = append(sums, sum)
	}
	return plans, sums, nil
}

// UsageError is a bad flag: the CLI exits with code 2.
type UsageError struct{ error }

// Unwrap returns the error.
func (e UsageError) Unwrap() error { return e.error }
