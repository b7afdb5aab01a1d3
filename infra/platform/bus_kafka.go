package platform

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.uber.org/fx"

	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/bus/kafka"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/redis"
)

// newKafkaBus connects to the Kafka brokers and creates the topic. Kafka
// has neither conditional appends nor deduplication by message id, nor
// deletable messages: the fence of conditional appends and the
// deduplication window are kept in Redis, the dead letters in MongoDB.
func newKafkaBus(lc fx.Lifecycle, cfg config.Config, log *slog.Logger, d *Docs, h *Hot) (*Bus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := kafka.Brokers(cfg.KafkaBrokers)
	b, err := kafka.Open(ctx, kafka.Config{
		Brokers: brokers, Topic: cfg.KafkaTopic, Partitions: cfg.Partitions, Replication: cfg.Replicas(),
		Fence: redis.NewFence(h.Client, "", h.Config), Dedup: redis.NewDedup(h.Client, ""), DedupWindow: cfg.Dedup,
	})
	if err != nil {
		return nil, fmt.Errorf("--kafka-brokers %s: %w", cfg.KafkaBrokers, err)
	}
	lc.Append(fx.StopHook(b.Close))
	dl, err := mongo.NewDeadLetters(ctx, d.DB)
	if err != nil {
		return nil, err
	}
	return &Bus{
		Kind: config.BusKafka, URL: cfg.KafkaBrokers, Topic: cfg.KafkaTopic,
		Publisher:   b.Publisher,
		Appender:    bus.NewAppender(b.Publisher, cfg.KafkaTopic, cfg.Partitions),
		Heads:       b.Heads(),
		Log:         b.Log,
		DeadLetters: dl,
		NewSubscriber: func(start projector.StartAfter, window int) (messageSubscriber, error) {
			return b.NewSubscriber(start, window, log)
		},
		newOwner: func(runners runnerSet) (Ownership, error) {
			return kafka.NewGroup(kafka.GroupConfig{
				Brokers: brokers, Topic: cfg.KafkaTopic, Group: cfg.KafkaGroup, Replica: cfg.ReplicaID(),
				SessionTimeout: cfg.KafkaSessionTimeout, Logger: log,
			}, runners)
		},
		ready: func(ctx context.Context) error {
			if err := b.Client.Ping(ctx); err != nil {
				return fmt.Errorf("kafka: %w", err)
			}
			return nil
		},
	}, nil
}
