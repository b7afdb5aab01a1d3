package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	DefaultAckTimeout     = 2 * time.Second
	maxRetryBackoff       = 500 * time.Millisecond
)

// PublisherConfig configures a [Publisher].
type PublisherConfig struct {
	// Timeout bounds one Publish call when the messages' context has no
	// deadline; default [DefaultPublishTimeout].
	Timeout time.Duration
	// AckTimeout is how long one attempt waits for acks before publishing
	// the unacknowledged messages again (with the same Nats-Msg-Id, so each
	// is stored once); default [DefaultAckTimeout]. A stream leader that
	// dies holding messages never acks them: without this bound a publish
	// would wait out its whole deadline.
	AckTimeout time.Duration
}

// Publisher is a Watermill publisher over JetStream. Publish sends all
// messages asynchronously and returns once every one is acknowledged.
type Publisher struct {
	js  jetstream.JetStream
	cfg PublisherConfig
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a publisher over js. Create js with
// jetstream.WithPublishAsyncTimeout so abandoned acks are dropped.
func NewPublisher(js jetstream.JetStream, cfg PublisherConfig) *Publisher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultPublishTimeout
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	return &Publisher{js: js, cfg: cfg}
}

// Publish stores msgs on the stream under topic and sets [bus.MetaPosition]
// on each. Every message needs [bus.MetaPartition], [bus.MetaAggregateType]
// and [bus.MetaAggregateID] (see bus.ToMessage). The first message's
// context bounds the call; until it ends, messages that were not acked
// (leader election, lost connection) are published again, which their ids
// make safe. On error some messages may have been stored, and publishing
// them again is safe for the same reason.
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
	var lastErr error
	for attempt := 0; ; attempt++ {
		retry, err := p.attempt(ctx, topic, msgs, pending, attempt == 0)
		if err != nil {
			return err
		}
		if len(retry) == 0 {
			return nil
		}
		pending, lastErr = retry, fmt.Errorf("%d of %d messages not acknowledged yet", len(retry), len(msgs))
		select {
		case <-time.After(min(time.Duration(25<<attempt)*time.Millisecond, maxRetryBackoff)):
		case <-ctx.Done():
			return fmt.Errorf("publish: %w (%v)", ctx.Err(), lastErr)
		}
	}
}

// attempt publishes msgs[pending] and waits up to AckTimeout for their
// acks; it returns those to publish again. A failed expectation on the
// aggregate's position is returned as an error wrapping events.ErrConflict.
//
// A duplicate ack marks its message with bus.MetaDuplicate on the first
// attempt only: on a later one it may be this call's own earlier attempt,
// whose ack was lost, that stored the message.
func (p *Publisher) attempt(ctx context.Context, topic string, msgs []*message.Message, pending []int, first bool) ([]int, error) {
	futures := make([]jetstream.PubAckFuture, len(pending))
	var retry []int
	for j, i := range pending {
		nm, opts, err := toNATS(topic, msgs[i])
		if err != nil {
			return nil, err
		}
		if futures[j], err = p.js.PublishMsgAsync(nm, opts...); err != nil {
			futures[j] = nil
		}
	}
	timeout := time.NewTimer(p.cfg.AckTimeout)
	defer timeout.Stop()
	expired := false
	for j, i := range pending {
		if futures[j] == nil || expired {
			retry = append(retry, i)
			continue
		}
		select {
		case ack := <-futures[j].Ok():
			msgs[i].Metadata.Set(bus.MetaPosition, strconv.FormatUint(ack.Sequence, 10))
			if ack.Duplicate && first {
				msgs[i].Metadata.Set(bus.MetaDuplicate, "1")
			}
		case err := <-futures[j].Err():
			if isWrongLastSeq(err) {
				return nil, fmt.Errorf("publish %s: %w: %v", msgs[i].UUID, events.ErrConflict, err)
			}
			retry = append(retry, i)
		case <-timeout.C:
			expired = true
			retry = append(retry, i)
		case <-ctx.Done():
			return nil, fmt.Errorf("publish %d messages: %w", len(msgs), ctx.Err())
		}
	}
	return retry, nil
}

// Close implements message.Publisher; the connection belongs to the caller.
func (p *Publisher) Close() error { return nil }

func toNATS(topic string, m *message.Message) (*nats.Msg, []jetstream.PublishOpt, error) {
	part, typ, id := m.Metadata.Get(bus.MetaPartition), m.Metadata.Get(bus.MetaAggregateType), m.Metadata.Get(bus.MetaAggregateID)
	if part == "" || typ == "" || id == "" {
		return nil, nil, fmt.Errorf("publish %s: message lacks partition or aggregate metadata (use bus.ToMessage)", m.UUID)
	}
	nm := &nats.Msg{Subject: subject(topic, part, typ, id), Data: m.Payload, Header: nats.Header{}}
	for k, v := range m.Metadata {
		if carried(k) {
			nm.Header.Set(k, v)
		}
	}
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(bus.DedupKey(m))}
	if exp := m.Metadata.Get(bus.MetaExpected); exp != "" {
		seq, err := strconv.ParseUint(exp, 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("publish %s: bad %s %q", m.UUID, bus.MetaExpected, exp)
		}
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(seq))
	}
	return nm, opts, nil
}

// carried reports whether metadata key k travels as a NATS header (see
// bus.Carried); the "Nats-" prefix is the server's.
func carried(k string) bool { return bus.Carried(k) && !strings.HasPrefix(k, "Nats-") }

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
