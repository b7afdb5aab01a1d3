package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
)

// Defaults of [PublisherConfig].
const (
	DefaultPublishTimeout = 10 * time.Second
	DefaultPublishRetries = 5
)

// PublisherConfig configures a [Publisher].
type PublisherConfig struct {
	// Timeout bounds one Publish call when the messages' context has no
	// deadline; default [DefaultPublishTimeout].
	Timeout time.Duration
	// Retries is how often a message whose ack did not arrive is published
	// again (with the same Nats-Msg-Id, so it is stored once); default
	// [DefaultPublishRetries].
	Retries int
}

// Publisher is a Watermill publisher over JetStream. Publish sends all
// messages asynchronously and returns once every one is acknowledged.
type Publisher struct {
	js  jetstream.JetStream
	cfg PublisherConfig
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a publisher over js.
func NewPublisher(js jetstream.JetStream, cfg PublisherConfig) *Publisher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultPublishTimeout
	}
	if cfg.Retries <= 0 {
		cfg.Retries = DefaultPublishRetries
	}
	return &Publisher{js: js, cfg: cfg}
}

// Publish stores msgs on the stream under topic and sets [bus.MetaPosition]
// on each. Every message needs [bus.MetaPartition], [bus.MetaAggregateType]
// and [bus.MetaAggregateID] (see bus.ToMessage). The first message's
// context bounds the call. Messages are sent in order; on error, some may
// have been stored: the returned error lists which failed, and publishing
// them again is safe because their ids deduplicate.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ctx := msgs[0].Context()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
	}
	pending := make([]int, len(msgs))
	for i := range msgs {
		pending[i] = i
	}
	var errs []error
	for attempt := 0; len(pending) > 0; attempt++ {
		futures := make([]jetstream.PubAckFuture, len(pending))
		errs = errs[:0]
		for j, i := range pending {
			nm, opts, err := toNATS(topic, msgs[i])
			if err != nil {
				return err
			}
			if futures[j], err = p.js.PublishMsgAsync(nm, opts...); err != nil {
				futures[j] = nil
				errs = append(errs, fmt.Errorf("publish %s: %w", msgs[i].UUID, err))
			}
		}
		var retry []int
		for j, i := range pending {
			if futures[j] == nil {
				retry = append(retry, i)
				continue
			}
			select {
			case ack := <-futures[j].Ok():
				msgs[i].Metadata.Set(bus.MetaPosition, strconv.FormatUint(ack.Sequence, 10))
			case err := <-futures[j].Err():
				if isWrongLastSeq(err) {
					return fmt.Errorf("publish %s: %w: %v", msgs[i].UUID, events.ErrConflict, err)
				}
				errs = append(errs, fmt.Errorf("publish %s: %w", msgs[i].UUID, err))
				retry = append(retry, i)
			case <-ctx.Done():
				return fmt.Errorf("publish %d messages: %w", len(msgs), ctx.Err())
			}
		}
		pending = retry
		if len(pending) > 0 && attempt+1 >= p.cfg.Retries {
			return fmt.Errorf("publish: %d of %d messages not acknowledged after %d attempts: %w",
				len(pending), len(msgs), attempt+1, errors.Join(errs...))
		}
		if len(pending) > 0 {
			select {
			case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
			case <-ctx.Done():
				return fmt.Errorf("publish: %w (last errors: %w)", ctx.Err(), errors.Join(errs...))
			}
		}
	}
	return nil
}

// Close implements message.Publisher; the connection belongs to the caller.
func (p *Publisher) Close() error { return nil }

func toNATS(topic string, m *message.Message) (*nats.Msg, []jetstream.PublishOpt, error) {
	part, typ, id := m.Metadata.Get(bus.MetaPartition), m.Metadata.Get(bus.MetaAggregateType), m.Metadata.Get(bus.MetaAggregateID)
	if part == "" || typ == "" || id == "" {
		return nil, nil, fmt.Errorf("publish %s: message lacks partition or aggregate metadata (use bus.ToMessage)", m.UUID)
	}
	nm := &nats.Msg{Subject: subject(topic, part, typ, id), Data: m.Payload, Header: nats.Header{}}
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(m.UUID)}
	if exp := m.Metadata.Get(bus.MetaExpected); exp != "" {
		seq, err := strconv.ParseUint(exp, 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("publish %s: bad %s %q", m.UUID, bus.MetaExpected, exp)
		}
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(seq))
	}
	return nm, opts, nil
}

// isWrongLastSeq reports a failed optimistic-concurrency expectation (the
// replicated-stream code 10164 included).
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
