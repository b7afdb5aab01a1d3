// Package kafka implements evflow's bus over Apache Kafka with franz-go: a
// Watermill message.Publisher that returns only once every record is
// acknowledged by all in-sync replicas (idempotent producer, acks=all), a
// message.Subscriber that delivers one partition in order from a
// projection's checkpoint, partition ownership through a consumer group
// (cooperative-sticky rebalancing), and the reads replay and status need.
//
// Layout. One topic holds every partition; evflow's partition of an event
// is events.Partition(aggregate id), which the producer sets explicitly, so
// the topic's partition count must equal evflow's (checked at start). The
// record key is the aggregate id; headers carry the event id and the
// aggregate type.
//
// Positions. A position is the record's offset + 1, so that 0 keeps meaning
// "nothing yet". Positions are per partition (JetStream's are stream-wide);
// every guard in evflow compares positions of one partition only.
//
// What Kafka lacks, and how evflow makes up for it:
//   - Conditional append. Kafka cannot append "only if the aggregate's last
//     event is still N". A [Fence] (a Redis hash per aggregate, changed by
//     Lua scripts) orders the conditional appends of each aggregate: claim,
//     produce, settle. A claim whose holder died is resolved from the log.
//   - Deduplication of a retried publish by event id. Kafka's idempotent
//     producer drops its own retries, not a caller's. A [Dedup] (Redis)
//     remembers the position of each published event id for a window.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evflow/evflow/infra/bus"
)

// Defaults.
const (
	DefaultTopic = "evflow"
	DefaultGroup = "evflow"
)

// Record headers.
const (
	hdrEventID = "evflow-event-id"
	hdrAggType = "evflow-aggregate-type"
)

// TopicConfig describes the event topic.
type TopicConfig struct {
	// Name of the topic; default [DefaultTopic].
	Name string
	// Partitions is evflow's partition count; required.
	Partitions int
	// Replication is the replication factor; default 1 (3 in production,
	// with min.insync.replicas=2 set on the topic).
	Replication int
}

// Brokers splits a comma-separated broker list.
func Brokers(list string) []string {
	var out []string
	for _, b := range strings.Split(list, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// EnsureTopic creates the topic (events kept for ever, and written to 2
// replicas at least when it has more than 1), or checks that the existing
// one has the configured partition count (changing it would move aggregates between
// partitions and break their order). It retries while the cluster does not
// answer, until ctx ends.
func EnsureTopic(ctx context.Context, adm *kadm.Client, cfg TopicConfig) error {
	if cfg.Name == "" {
		cfg.Name = DefaultTopic
	}
	if cfg.Replication <= 0 {
		cfg.Replication = 1
	}
	if cfg.Partitions < 1 {
		return fmt.Errorf("ensure topic %s: partitions must be at least 1, got %d", cfg.Name, cfg.Partitions)
	}
	for {
		err := ensureTopic(ctx, adm, cfg)
		if err == nil || errors.Is(err, errPartitionCount) || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}

var errPartitionCount = errors.New("the partition count cannot change")

func ensureTopic(ctx context.Context, adm *kadm.Client, cfg TopicConfig) error {
	n, err := TopicPartitions(ctx, adm, cfg.Name)
	if err == nil {
		if n != cfg.Partitions {
			return fmt.Errorf("ensure topic %s: it has %d partitions, configured %d: %w", cfg.Name, n, cfg.Partitions, errPartitionCount)
		}
		return nil
	}
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return err
	}
	// Events are kept for ever: projections are rebuilt from the whole log.
	// Timestamps are the broker's, so a replay from a time does not depend
	// on the producers' clocks.
	forever, logAppend := "-1", "LogAppendTime"
	configs := map[string]*string{"retention.ms": &forever, "retention.bytes": &forever, "message.timestamp.type": &logAppend}
	if cfg.Replication > 1 {
		two := "2"
		configs["min.insync.replicas"] = &two
	}
	resp, err := adm.CreateTopic(ctx, int32(cfg.Partitions), int16(cfg.Replication), configs, cfg.Name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", cfg.Name, err)
	}
	// Created: usable once every partition has a leader that answers.
	ends, err := adm.ListEndOffsets(ctx, cfg.Name)
	if err == nil {
		err = ends.Error()
	}
	if err == nil && len(ends[cfg.Name]) != cfg.Partitions {
		err = fmt.Errorf("%d of %d partitions ready", len(ends[cfg.Name]), cfg.Partitions)
	}
	if err != nil {
		return fmt.Errorf("topic %s created, not ready yet: %w", cfg.Name, err)
	}
	return nil
}

// TopicPartitions returns the partition count of topic; an error wrapping
// kerr.UnknownTopicOrPartition when it does not exist.
func TopicPartitions(ctx context.Context, adm *kadm.Client, topic string) (int, error) {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok {
		return 0, fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
	}
	if d.Err != nil {
		return 0, fmt.Errorf("topic %s: %w", topic, d.Err)
	}
	return len(d.Partitions), nil
}

// position is the evflow position of the record at offset.
func position(offset int64) uint64 { return uint64(offset) + 1 }

// offsetAfter is the offset of the record right after position pos.
func offsetAfter(pos uint64) int64 { return int64(pos) }

// recordMeta returns the event id and aggregate of a record.
func recordMeta(r *kgo.Record) (id, aggType, aggID string) {
	for _, h := range r.Headers {
		switch h.Key {
		case hdrEventID:
			id = string(h.Value)
		case hdrAggType:
			aggType = string(h.Value)
		}
	}
	return id, aggType, string(r.Key)
}

// carried reports whether metadata key k travels as a record header (see
// bus.Carried); the "evflow-" prefix is this package's own headers'.
func carried(k string) bool { return bus.Carried(k) && !strings.HasPrefix(k, "evflow-") }

// aggregateKey is the fence key of an aggregate.
func aggregateKey(typ, id string) string { return typ + "/" + id }
