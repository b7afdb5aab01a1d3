// Package jetstream implements evflow's bus over NATS JetStream: a
// Watermill message.Publisher that returns only after JetStream acked every
// message, and a message.Subscriber that delivers one partition in stream
// order.
//
// Layout. One stream (file storage) holds every partition. An event's
// subject is <topic>.<partition>.<aggregate type>.<aggregate id>, so a
// partition is the subject filter <topic>.<partition>.> and the last event
// of an aggregate is the last message of its subject, which is what
// optimistic concurrency checks (Nats-Expected-Last-Subject-Sequence).
// The event id travels as Nats-Msg-Id, so a retried publish within the
// stream's duplicate window is stored once.
//
// Consumption. A partition is read with an ordered consumer starting after
// the position its projection last applied (the projection stores that
// position with its data, as Kafka stores offsets). Ordered consumers never
// redeliver out of order, which position-guarded projections need: an older
// event arriving after a newer one would be ignored, not applied.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/infra/bus"
)

// Defaults of [StreamConfig].
const (
	DefaultStream     = "EVFLOW"
	DefaultTopic      = "evflow"
	DefaultDuplicates = 2 * time.Minute
)

// partitionsKey is the stream metadata key recording the partition count,
// which is fixed for the life of a stream.
const partitionsKey = "evflow_partitions"

// StreamConfig describes the event stream.
type StreamConfig struct {
	// Name of the stream; default [DefaultStream].
	Name string
	// Topic is the subject prefix; default [DefaultTopic].
	Topic string
	// Partitions is the number of partitions; required.
	Partitions int
	// Replicas is 1 on a single node, 3 in a cluster; default 1.
	Replicas int
	// Duplicates is the deduplication window for Nats-Msg-Id; default [DefaultDuplicates].
	Duplicates time.Duration
}

func (c *StreamConfig) setDefaults() {
	if c.Name == "" {
		c.Name = DefaultStream
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
	}
}

// errPartitionCount is an existing stream with another partition count.
var errPartitionCount = errors.New("the partition count cannot change")

// EnsureStream creates the stream, or checks that the existing one has the
// same partition count (changing it would move aggregates between
// partitions and break their order). It retries what may pass, such as a
// cluster still electing its JetStream leader, until ctx ends.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	cfg.setDefaults()
	if cfg.Partitions < 1 {
		return nil, fmt.Errorf("ensure stream %s: partitions must be at least 1, got %d", cfg.Name, cfg.Partitions)
	}
	return retryForming(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return ensureStream(ctx, js, cfg)
	}, func(err error) bool { return errors.Is(err, errPartitionCount) })
}

// retryForming calls f until it succeeds, fails for good (final), or ctx
// ends. A cluster without a JetStream leader does not answer at all, so
// each attempt gets its own deadline.
func retryForming[T any](ctx context.Context, f func(context.Context) (T, error), final func(error) bool) (T, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, ensureAttempt)
		v, err := f(actx)
		cancel()
		if err == nil || (final != nil && final(err)) || ctx.Err() != nil {
			return v, err
		}
		bus.Sleep(ctx, 250*time.Millisecond)
	}
}

// ensureAttempt bounds one attempt of [EnsureStream].
const ensureAttempt = 2 * time.Second

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	want := strconv.Itoa(cfg.Partitions)
	s, err := js.Stream(ctx, cfg.Name)
	if err == nil {
		if got := s.CachedInfo().Config.Metadata[partitionsKey]; got != want {
			return nil, fmt.Errorf("ensure stream %s: it has %s partitions, configured %d: %w", cfg.Name, got, cfg.Partitions, errPartitionCount)
		}
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	s, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Name,
		Description: "evflow events",
		Subjects:    []string{cfg.Topic + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.Duplicates,
		Retention:   jetstream.LimitsPolicy,
		Metadata:    map[string]string{partitionsKey: want},
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// subject is the subject of an aggregate's events:
// <topic>.<partition>.<aggregate type>.<aggregate id>.
func subject(topic, partition, aggregateType, aggregateID string) string {
	return topic + "." + partition + "." + aggregateType + "." + aggregateID
}

// StreamPartitions returns the partition count recorded in stream's
// metadata when it was created.
func StreamPartitions(stream jetstream.Stream) (int, error) {
	info := stream.CachedInfo()
	n, err := strconv.Atoi(info.Config.Metadata[partitionsKey])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("stream %s records no partition count (metadata %s = %q)", info.Config.Name, partitionsKey, info.Config.Metadata[partitionsKey])
	}
	return n, nil
}
