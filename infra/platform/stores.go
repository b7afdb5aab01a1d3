package platform

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/rueidis"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"

	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/ferret"
	"github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/redis"
)

type messageSubscriber = message.Subscriber

// Docs is the replica's MongoDB store (of the original generation; see
// generations for the live ones).
type Docs struct {
	Store  *mongo.Store
	Client *mongodriver.Client
	DB     *mongodriver.Database
	// Config is the store configuration, FerretDB's when detected.
	Config mongo.Config
	// URI is the connection string in use.
	URI string
}

func newDocs(lc fx.Lifecycle, cfg config.Config, log *slog.Logger) (*Docs, error) {
	uri, maxBulk := cfg.MongoURI, cfg.MongoMaxBulk
	if uri == "" {
		dir := filepath.Join(cfg.DataDir, "mongo")
		s, err := ferret.Start(dir, log)
		if err != nil {
			return nil, fmt.Errorf("embedded FerretDB: %w", err)
		}
		lc.Append(fx.StopHook(s.Close))
		uri = s.URI()
		log.Info("embedded FerretDB running (MongoDB wire protocol, SQLite)", "uri", uri, "dir", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, db, err := mongo.Connect(ctx, uri, cfg.MongoDB)
	if err != nil {
		return nil, fmt.Errorf("--mongo-uri: %w", err)
	}
	lc.Append(fx.StopHook(func(ctx context.Context) error { return client.Disconnect(ctx) }))
	mcfg := mongo.Config{MaxBulk: maxBulk}
	ferretDB, err := mongo.IsFerretDB(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("--mongo-uri: %w", err)
	}
	if ferretDB {
		mcfg = mongo.FerretConfig(mcfg)
		log.Info("MongoDB wire protocol served by FerretDB: writes serialized, bulks capped", "max_bulk", mcfg.MaxBulk)
	}
	store, err := mongo.NewStore(db, mcfg)
	if err != nil {
		return nil, err
	}
	return &Docs{Store: store, Client: client, DB: db, Config: mcfg, URI: uri}, nil
}

// Hot is the replica's Redis store.
type Hot struct {
	Store  *redis.Store
	Client rueidis.Client
	// Config is the store configuration of every generation.
	Config redis.Config
}

// hotConfig is the Redis store configuration cfg asks for: with Sentinel,
// a checkpoint (and the batch before it) counts as stored once a replica
// Sentinel may promote has it.
func hotConfig(cfg config.Config) redis.Config {
	if cfg.RedisSentinels != "" {
		return redis.Config{WaitReplicas: 1}
	}
	return redis.Config{}
}

func newHot(lc fx.Lifecycle, cfg config.Config, log *slog.Logger) (*Hot, error) {
	rcfg, external := cfg.Redis()
	if !external {
		a, stop, err := redis.StartEmbedded()
		if err != nil {
			return nil, fmt.Errorf("embedded Redis: %w", err)
		}
		lc.Append(fx.StopHook(stop))
		rcfg.Addr = a
		log.Warn("embedded in-memory Redis (miniredis) running: its projections are rebuilt from the stream at every start; use --redis-addr or --redis-sentinels in production", "addr", a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := redis.Connect(ctx, rcfg)
	if err != nil {
		return nil, fmt.Errorf("--redis-addr/--redis-sentinels: %w", err)
	}
	lc.Append(fx.StopHook(client.Close))
	store, err := redis.New(client, hotConfig(cfg))
	if err != nil {
		return nil, err
	}
	return &Hot{Store: store, Client: client, Config: hotConfig(cfg)}, nil
}
