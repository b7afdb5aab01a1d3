// Package bus carries evflow events over any Watermill Publisher/Subscriber.
//
// It maps envelopes to Watermill messages and back, names the topics of a
// partitioned stream, and offers an [Appender] that publishes envelopes and
// reports the stream positions the broker assigned. Backends (JetStream in
// infra/bus/jetstream, Kafka in infra/bus/kafka) implement message.Publisher and
// message.Subscriber with these semantics:
//
//   - Publish returns only after the broker has stored every message; it
//     sets [MetaPosition] on each message it stored, and [MetaDuplicate] on
//     each it found stored already (a retry: the position is the first
//     copy's), and fails with an error wrapping events.ErrConflict when
//     [MetaExpected] no longer holds.
//   - A subscription to [PartitionTopic] delivers that partition's messages
//     in stream order, each with [MetaPosition] and [MetaPartition] set,
//     and [MetaAggregateType] and [MetaAggregateID] where the backend
//     knows them without decoding the payload.
package bus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/events"
)

// Metadata keys set on Watermill messages.
const (
	// MetaPartition is the partition of the message's aggregate.
	MetaPartition = "evflow_partition"
	// MetaAggregateType and MetaAggregateID name the message's aggregate.
	MetaAggregateType = "evflow_aggregate_type"
	MetaAggregateID   = "evflow_aggregate_id"
	// MetaTenant is the tenant of the message's event.
	MetaTenant = "evflow_tenant"
	// MetaPosition is the stream position the broker assigned.
	MetaPosition = "evflow_position"
	// MetaExpected, when set on a published message, is the position the
	// aggregate's last event must have for the publish to succeed.
	MetaExpected = "evflow_expected"
	// MetaDuplicate is set ("1") by Publish on a message the broker had
	// stored already under its [DedupKey].
	MetaDuplicate = "evflow_duplicate"
)

// ToMessage encodes an envelope as a Watermill message addressed to its
// aggregate's partition. The message UUID is the event id, which backends
// use for broker-side deduplication of retried publishes.
func ToMessage(e events.Envelope, partitions int) (*message.Message, error) {
	b, err := events.Marshal(e)
	if err != nil {
		return nil, err
	}
	m := message.NewMessage(e.ID, b)
	m.Metadata.Set(MetaPartition, strconv.Itoa(events.Partition(e.AggregateID, partitions)))
	m.Metadata.Set(MetaAggregateType, e.AggregateType)
	m.Metadata.Set(MetaAggregateID, e.AggregateID)
	m.Metadata.Set(MetaTenant, e.Tenant)
	return m, nil
}

// DedupKey is the key under which a backend deduplicates m: its event id
// within its tenant and aggregate, "<tenant>/<aggregate type>/<aggregate
// id>/<event id>". A retried publish of an event has the same key; an
// event of another aggregate, or of another tenant on the same aggregate
// (the launches of an app reported by its owner and by a grantee), that
// happens to reuse the id does not, so no producer can have another's
// events dropped as its duplicates. Event ids hold no '/'
// ([events.ValidID]): [EventIDOf] recovers the id.
func DedupKey(m *message.Message) string {
	return m.Metadata.Get(MetaTenant) + "/" + m.Metadata.Get(MetaAggregateType) + "/" + m.Metadata.Get(MetaAggregateID) + "/" + m.UUID
}

// EventIDOf returns the event id of a [DedupKey]; a bare id is its own.
func EventIDOf(key string) string {
	return key[strings.LastIndexByte(key, '/')+1:]
}

// FromMessage decodes a delivered message into a record. A malformed
// payload yields an error wrapping events.ErrMalformed.
func FromMessage(m *message.Message) (events.Record, error) {
	pos, err := Position(m)
	if err != nil {
		return events.Record{}, err
	}
	part, err := strconv.Atoi(m.Metadata.Get(MetaPartition))
	if err != nil {
		return events.Record{}, fmt.Errorf("message %s: bad %s %q", m.UUID, MetaPartition, m.Metadata.Get(MetaPartition))
	}
	env, err := events.Unmarshal(m.Payload)
	if err != nil {
		return events.Record{Partition: part, Position: pos}, fmt.Errorf("message %s at %d: %w", m.UUID, pos, err)
	}
	return events.Record{Envelope: env, Partition: part, Position: pos}, nil
}

// Position returns the stream position a backend set on m.
func Position(m *message.Message) (uint64, error) {
	pos, err := strconv.ParseUint(m.Metadata.Get(MetaPosition), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("message %s: bad %s %q", m.UUID, MetaPosition, m.Metadata.Get(MetaPosition))
	}
	return pos, nil
}

// PartitionTopic is the topic that carries partition p of topic.
func PartitionTopic(topic string, p int) string { return topic + "." + strconv.Itoa(p) }

// ParsePartitionTopic splits a [PartitionTopic] into its topic and partition.
func ParsePartitionTopic(pt string) (topic string, p int, err error) {
	i := strings.LastIndexByte(pt, '.')
	if i <= 0 {
		return "", 0, fmt.Errorf("topic %q is not a partition topic (want <topic>.<partition>)", pt)
	}
	p, err = strconv.Atoi(pt[i+1:])
	if err != nil || p < 0 {
		return "", 0, fmt.Errorf("topic %q is not a partition topic (want <topic>.<partition>)", pt)
	}
	return pt[:i], p, nil
}

// Log is what evflow reads of a backend's partitioned log besides its
// subscriptions: for status, replay and rebuilds.
type Log interface {
	// Heads returns the position of the last event of every partition (0
	// for an empty one).
	Heads(ctx context.Context) ([]uint64, error)
	// Pending counts partition p's events after position after.
	Pending(ctx context.Context, p int, after uint64) (uint64, error)
	// StartsAt returns, per partition, the position after which the events
	// stored at or after t begin.
	StartsAt(ctx context.Context, t time.Time) ([]uint64, error)
	// Messages counts the events the log holds.
	Messages(ctx context.Context) (uint64, error)
}
