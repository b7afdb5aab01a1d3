package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/evflow/evflow/infra/bus"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/bus/kafka"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/projector"
)

// replayBus is what a replay reads of the running replicas' event log.
type replayBus struct {
	log           bus.Log
	newSubscriber projector.NewSubscriber
	topic         string
	// partitions is the log's own partition count, whatever --partitions
	// says: a replay of fewer partitions would swap in an incomplete
	// generation.
	partitions  int
	deadLetters letterStore
	close       func()
}

// openReplayBus opens the event log cfg names, without creating anything
// on it.
func openReplayBus(ctx context.Context, cfg config.Config, log *slog.Logger, db *mongodriver.Database) (*replayBus, error) {
	if cfg.Bus == config.BusKafka {
		return openKafkaReplay(ctx, cfg, log, db)
	}
	nc, err := connectNATS(cfg, cfg.NATSURL, "evflow-replay", false)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*replayBus, error) { nc.Close(); return nil, err }
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(fmt.Errorf("jetstream: %w", err))
	}
	stream, err := js.Stream(ctx, evjs.DefaultStream)
	if err != nil {
		return fail(fmt.Errorf("stream %s: %w", evjs.DefaultStream, err))
	}
	n, err := evjs.StreamPartitions(stream)
	if err != nil {
		return fail(err)
	}
	dl, err := evjs.EnsureDeadLetters(ctx, js, cfg.Replicas())
	if err != nil {
		return fail(err)
	}
	return &replayBus{
		log: evjs.Log{Stream: stream, Topic: evjs.DefaultTopic, Partitions: n}, topic: evjs.DefaultTopic, partitions: n,
		newSubscriber: func(start projector.StartAfter, window int) (messageSubscriber, error) {
			// A replay reads every partition: one consumer serves them all.
			return evjs.NewMux(js, evjs.DefaultTopic, evjs.SubscriberConfig{StartAfter: start, Window: window, Logger: log})
		},
		deadLetters: dl, close: nc.Close,
	}, nil
}

func openKafkaReplay(ctx context.Context, cfg config.Config, log *slog.Logger, db *mongodriver.Database) (*replayBus, error) {
	brokers := kafka.Brokers(cfg.KafkaBrokers)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("--kafka-brokers %s: %w", cfg.KafkaBrokers, err)
	}
	defer cl.Close()
	n, err := kafka.TopicPartitions(ctx, kadm.NewClient(cl), cfg.KafkaTopic)
	if err != nil {
		return nil, fmt.Errorf("--kafka-brokers %s: %w", cfg.KafkaBrokers, err)
	}
	if n < 1 {
		return nil, errors.New("the topic has no partitions")
	}
	b, err := kafka.Open(ctx, kafka.Config{Brokers: brokers, Topic: cfg.KafkaTopic, Partitions: n})
	if err != nil {
		return nil, err
	}
	dl, err := mongo.NewDeadLetters(ctx, db)
	if err != nil {
		b.Close()
		return nil, err
	}
	return &replayBus{
		log: b.Log, topic: cfg.KafkaTopic, partitions: n,
		newSubscriber: func(start projector.StartAfter, window int) (messageSubscriber, error) {
			return b.NewSubscriber(start, window, log)
		},
		deadLetters: dl, close: b.Close,
	}, nil
}
