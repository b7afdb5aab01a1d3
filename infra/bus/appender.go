package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/events"
)

// Appender appends envelopes to a partitioned topic through a Watermill
// publisher. It implements handlers.Appender.
type Appender struct {
	pub        message.Publisher
	topic      string
	partitions int
}

// NewAppender returns an Appender publishing to topic, split in partitions.
func NewAppender(pub message.Publisher, topic string, partitions int) *Appender {
	return &Appender{pub: pub, topic: topic, partitions: partitions}
}

// Append publishes envs and returns their stream positions, in order. It
// returns only once the broker stored every event. expected, when non-nil,
// is the position of the aggregate's last event (0: none yet); if that no
// longer holds, Append fails with an error wrapping events.ErrConflict.
func (a *Appender) Append(ctx context.Context, expected *uint64, envs ...events.Envelope) ([]uint64, error) {
	msgs := make([]*message.Message, len(envs))
	for i, e := range envs {
		m, err := ToMessage(e, a.partitions)
		if err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
		if expected != nil {
			m.Metadata.Set(MetaExpected, strconv.FormatUint(*expected, 10))
		}
		m.SetContext(ctx)
		msgs[i] = m
	}
	if err := a.pub.Publish(a.topic, msgs...); err != nil {
		if errors.Is(err, events.ErrConflict) {
			return nil, fmt.Errorf("append %d events: %w", len(envs), err)
		}
		return nil, fmt.Errorf("append %d events: %w: %w", len(envs), events.ErrUnavailable, err)
	}
	positions := make([]uint64, len(msgs))
	for i, m := range msgs {
		pos, err := Position(m)
		if err != nil {
			return nil, fmt.Errorf("append: publisher did not report a position: %w", err)
		}
		positions[i] = pos
	}
	return positions, nil
}
