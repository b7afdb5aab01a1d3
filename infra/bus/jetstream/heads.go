package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/events"
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
