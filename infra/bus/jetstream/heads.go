package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
)

// Heads reads the position of an aggregate's last event from the stream
// (one direct get of its subject's last message). It implements handlers.Heads.
type Heads struct {
	stream     jetstream.Stream
	topic      string
	partitions int
}

// NewHeads returns a Heads over stream, whose subjects are under topic.
func NewHeads(stream jetstream.Stream, topic string, partitions int) *Heads {
	return &Heads{stream: stream, topic: topic, partitions: partitions}
}

// Head returns the stream position of the aggregate's last event, 0 if none.
func (h *Heads) Head(ctx context.Context, aggregateType, id string) (uint64, error) {
	subj := subject(h.topic, strconv.Itoa(events.Partition(id, h.partitions)), aggregateType, id)
	m, err := h.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last event of %s: %w", subj, err)
	}
	return m.Sequence, nil
}

// PartitionHeads returns the position of the last event of every partition
// of topic in stream (0 for an empty partition).
func PartitionHeads(ctx context.Context, stream jetstream.Stream, topic string, partitions int) ([]uint64, error) {
	heads := make([]uint64, partitions)
	for p := range heads {
		m, err := stream.GetLastMsgForSubject(ctx, bus.PartitionTopic(topic, p)+".>")
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return nil, fmt.Errorf("head of partition %d: %w", p, err)
		default:
			heads[p] = m.Sequence
		}
	}
	return heads, nil
}

// Pending counts the events of partition p of topic after position after.
func Pending(ctx context.Context, stream jetstream.Stream, topic string, p int, after uint64) (uint64, error) {
	c, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject: bus.PartitionTopic(topic, p) + ".>",
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1,
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return 0, fmt.Errorf("events of partition %d after %d: %w", p, after, err)
	}
	defer func() { _ = stream.DeleteConsumer(context.WithoutCancel(ctx), c.CachedInfo().Name) }()
	return c.CachedInfo().NumPending, nil
}

// SeqAt returns the position of the first event of topic stored at or
// after t, or the position the next event will get when there is none.
func SeqAt(ctx context.Context, stream jetstream.Stream, topic string, t time.Time) (uint64, error) {
	c, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject: topic + ".>",
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t,
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return 0, fmt.Errorf("first event at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	defer func() { _ = stream.DeleteConsumer(context.WithoutCancel(ctx), c.CachedInfo().Name) }()
	if c.CachedInfo().NumPending == 0 {
		info, err := stream.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("first event at %s: %w", t.Format(time.RFC3339Nano), err)
		}
		return info.State.LastSeq + 1, nil
	}
	batch, err := c.FetchNoWait(1)
	if err != nil {
		return 0, fmt.Errorf("first event at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			return 0, fmt.Errorf("first event at %s: %w", t.Format(time.RFC3339Nano), err)
		}
		return md.Sequence.Stream, nil
	}
	if err := batch.Error(); err != nil {
		return 0, fmt.Errorf("first event at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	return 0, fmt.Errorf("first event at %s: none delivered though %d pending", t.Format(time.RFC3339Nano), c.CachedInfo().NumPending)
}

// Log reads a partitioned topic of a stream. It implements bus.Log.
type Log struct {
	Stream     jetstream.Stream
	Topic      string
	Partitions int
}

// Heads implements bus.Log.
func (l Log) Heads(ctx context.Context) ([]uint64, error) {
	return PartitionHeads(ctx, l.Stream, l.Topic, l.Partitions)
}

// Pending implements bus.Log.
func (l Log) Pending(ctx context.Context, p int, after uint64) (uint64, error) {
	return Pending(ctx, l.Stream, l.Topic, p, after)
}

// StartsAt implements bus.Log: positions are stream-wide, so every
// partition starts after the same one.
func (l Log) StartsAt(ctx context.Context, t time.Time) ([]uint64, error) {
	seq, err := SeqAt(ctx, l.Stream, l.Topic, t)
	if err != nil {
		return nil, err
	}
	out := make([]uint64, l.Partitions)
	for p := range out {
		out[p] = seq - 1
	}
	return out, nil
}

// Messages implements bus.Log.
func (l Log) Messages(ctx context.Context) (uint64, error) {
	info, err := l.Stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.Msgs, nil
}
