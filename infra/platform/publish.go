package platform

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/bus"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/bus/kafka"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/redis"
)

// Ingester opens the event log of running replicas that cfg names
// (--bus with --nats-url, or --kafka-brokers and the --redis-addr that
// deduplicates retried publishes on Kafka) and returns an ingester of
// launches publishing to it directly, as the replicas' ingestion does, and
// the function that closes it.
func Ingester(ctx context.Context, cfg config.Config) (handlers.Ingester, func(), error) {
	if cfg.Bus != config.BusKafka && cfg.NATSURL == "" {
		return handlers.Ingester{}, nil, UsageError{errors.New("--nats-url is required with --bus jetstream")}
	}
	if err := cfg.ValidateSecurity(); err != nil {
		return handlers.Ingester{}, nil, UsageError{err}
	}
	if cfg.Bus == config.BusKafka {
		return kafkaIngester(ctx, cfg)
	}
	nc, err := connectNATS(cfg, cfg.NATSURL, "evflow-publish", false)
	if err != nil {
		return handlers.Ingester{}, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(evjs.DefaultAckTimeout))
	if err != nil {
		nc.Close()
		return handlers.Ingester{}, nil, fmt.Errorf("jetstream: %w", err)
	}
	stream, err := js.Stream(ctx, evjs.DefaultStream)
	if err != nil {
		nc.Close()
		return handlers.Ingester{}, nil, fmt.Errorf("stream %s (is a replica running?): %w", evjs.DefaultStream, err)
	}
	n, err := evjs.StreamPartitions(stream)
	if err != nil {
		nc.Close()
		return handlers.Ingester{}, nil, err
	}
	app := bus.NewAppender(evjs.NewPublisher(js, evjs.PublisherConfig{}), evjs.DefaultTopic, n)
	return handlers.NewIngester(app, handlers.Config{}), nc.Close, nil
}

func kafkaIngester(ctx context.Context, cfg config.Config) (handlers.Ingester, func(), error) {
	rcfg, external := cfg.Redis()
	switch {
	case cfg.KafkaBrokers == "":
		return handlers.Ingester{}, nil, UsageError{errors.New("--kafka-brokers is required with --bus kafka")}
	case cfg.RedisDB < 0 || cfg.RedisDB > 15:
		return handlers.Ingester{}, nil, UsageError{fmt.Errorf("--redis-db %d: must be 0 to 15", cfg.RedisDB)}
	case !external:
		return handlers.Ingester{}, nil, UsageError{errors.New("--redis-addr (or --redis-sentinels) is required with --bus kafka: retried publishes are deduplicated there, as by the replicas")}
	}
	brokers := kafka.Brokers(cfg.KafkaBrokers)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return handlers.Ingester{}, nil, UsageError{fmt.Errorf("--kafka-brokers: %w", err)}
	}
	n, err := kafka.TopicPartitions(ctx, kadm.NewClient(cl), cfg.KafkaTopic)
	cl.Close()
	if err != nil {
		return handlers.Ingester{}, nil, fmt.Errorf("--kafka-brokers %s (is a replica running?): %w", cfg.KafkaBrokers, err)
	}
	rc, err := redis.Connect(ctx, rcfg)
	if err != nil {
		return handlers.Ingester{}, nil, fmt.Errorf("--redis-addr/--redis-sentinels: %w", err)
	}
	b, err := kafka.Open(ctx, kafka.Config{Brokers: brokers, Topic: cfg.KafkaTopic, Partitions: n, Dedup: redis.NewDedup(rc, ""), DedupWindow: cfg.Dedup})
	if err != nil {
		rc.Close()
		return handlers.Ingester{}, nil, err
	}
	app := bus.NewAppender(b.Publisher, cfg.KafkaTopic, n)
	return handlers.NewIngester(app, handlers.Config{}), func() { b.Close(); rc.Close() }, nil
}
