package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures [Open].
type Config struct {
	// Brokers are the seed brokers; required.
	Brokers []string
	// Topic is the event topic; default [DefaultTopic].
	Topic string
	// Partitions is evflow's partition count; required.
	Partitions int
	// Replication is the topic's replication factor when Open creates it.
	Replication int
	// Fence orders conditional appends; Dedup drops republished event ids.
	Fence Fence
	Dedup Dedup
	// Lease is how long a fence claim lasts; default [DefaultLease].
	Lease time.Duration
	// DedupWindow is how long a published id is remembered; default [DefaultDedupWindow].
	DedupWindow time.Duration
	// Opts are added to every client (TLS, SASL).
	Opts []kgo.Opt
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Bus is a connection to the event topic: the publisher, the log reads
// and a factory of subscribers.
type Bus struct {
	Client    *kgo.Client
	Admin     *kadm.Client
	Publisher *Publisher
	Log       *Log
	cfg       Config
	close     func()
}

// Open connects to the brokers and creates the topic, or checks its
// partition count, retrying until ctx ends.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers")
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	// A short metadata age: a topic just created is seen at once.
	base := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.MetadataMinAge(250 * time.Millisecond)}
	cl, err := kgo.NewClient(append(append(base, ProducerOpts()...), cfg.Opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	var fenced *kgo.Client
	if cfg.Fence != nil {
		if fenced, err = kgo.NewClient(append(append(base, FencedProducerOpts(cfg.Lease)...), cfg.Opts...)...); err != nil {
			cl.Close()
			return nil, fmt.Errorf("kafka client: %w", err)
		}
	}
	closeAll := func() {
		cl.Close()
		if fenced != nil {
			fenced.Close()
		}
	}
	adm := kadm.NewClient(cl)
	if err := EnsureTopic(ctx, adm, TopicConfig{Name: cfg.Topic, Partitions: cfg.Partitions, Replication: cfg.Replication}); err != nil {
		closeAll()
		return nil, err
	}
	log := NewLog(adm, cfg.Topic, cfg.Partitions)
	scan := NewScanner(cfg.Brokers, cfg.Topic, log, cfg.Opts...)
	pub := NewPublisher(cl, fenced, scan, PublisherConfig{
		Topic: cfg.Topic, Fence: cfg.Fence, Lease: cfg.Lease, Dedup: cfg.Dedup, DedupWindow: cfg.DedupWindow, Logger: cfg.Logger,
	})
	return &Bus{Client: cl, Admin: adm, Publisher: pub, Log: log, cfg: cfg, close: closeAll}, nil
}

// NewSubscriber returns a subscriber of the topic delivering after
// startAfter's positions, window messages unacknowledged at most.
func (b *Bus) NewSubscriber(startAfter func(ctx context.Context, partition int) (uint64, error), window int, logger *slog.Logger) (*Subscriber, error) {
	return NewSubscriber(SubscriberConfig{
		Brokers: b.cfg.Brokers, Topic: b.cfg.Topic, StartAfter: startAfter, Window: window, Opts: b.cfg.Opts, Logger: logger,
	})
}

// Heads returns the aggregates' heads, read from the fence.
func (b *Bus) Heads() Heads { return Heads{Fence: b.cfg.Fence} }

// Close closes the bus's clients.
func (b *Bus) Close() { b.close() }
