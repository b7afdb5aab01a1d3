package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evflow/evflow/infra/bus"
)

// Defaults of [PublisherConfig].
const (
	DefaultPublishTimeout = 10 * time.Second
	DefaultLease          = 10 * time.Second
	DefaultDedupWindow    = 2 * time.Minute
)

// Dedup remembers, for a window, the position each published event id was
// stored at, so a retried publish of the same event is stored once.
type Dedup interface {
	// Lookup returns the positions of the ids already published (0: not seen).
	Lookup(ctx context.Context, ids []string) ([]uint64, error)
	// Remember records the positions of published ids for window.
	Remember(ctx context.Context, ids []string, positions []uint64, window time.Duration) error
}

// PublisherConfig configures a [Publisher].
type PublisherConfig struct {
	// Topic is the event topic; Publish's topic argument must match it.
	// Default [DefaultTopic].
	Topic string
	// Timeout bounds a Publish whose messages' context has no deadline;
	// default [DefaultPublishTimeout].
	Timeout time.Duration
	// Fence orders appends that carry [bus.MetaExpected]; without one such
	// appends fail.
	Fence Fence
	// Lease is how long a fence claim lasts; a produce gives up after half
	// of it. Default [DefaultLease].
	Lease time.Duration
	// Dedup, when set, drops republished event ids within DedupWindow
	// (default [DefaultDedupWindow]).
	Dedup       Dedup
	DedupWindow time.Duration
}

// Publisher is a Watermill publisher over Kafka. Publish produces every
// message to its evflow partition and returns once all in-sync replicas
// acknowledged each one.
type Publisher struct {
	cl   *kgo.Client
	scan *Scanner
	cfg  PublisherConfig
}

var _ message.Publisher = (*Publisher)(nil)

// ProducerOpts are the producer options evflow needs: explicit partitions,
// acks from all in-sync replicas, idempotence (franz-go's default), and
// delivery bounded by half the fence lease.
func ProducerOpts(lease time.Duration) []kgo.Opt {
	if lease <= 0 {
		lease = DefaultLease
	}
	return []kgo.Opt{
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(lease / 2),
		kgo.ProduceRequestTimeout(lease / 4),
	}
}

// NewPublisher returns a publisher over cl, a client built with
// [ProducerOpts]. scan finds the outcome of a conditional append whose
// publisher died; it may be nil when cfg.Fence is.
func NewPublisher(cl *kgo.Client, scan *Scanner, cfg PublisherConfig) *Publisher {
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultPublishTimeout
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	return &Publisher{cl: cl, scan: scan, cfg: cfg}
}

// Publish stores msgs and sets [bus.MetaPosition] on each. Every message
// needs [bus.MetaPartition], [bus.MetaAggregateType] and
// [bus.MetaAggregateID] (see bus.ToMessage). Messages carrying
// [bus.MetaExpected] must all be of one aggregate: they are appended only
// if its last position is still the expected one, else Publish fails with
// an error wrapping events.ErrConflict and stores nothing.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if topic != p.cfg.Topic {
		return fmt.Errorf("publish: topic %q, this publisher writes %q", topic, p.cfg.Topic)
	}
	ctx := msgs[0].Context()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
	}
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		r, err := toRecord(topic, m)
		if err != nil {
			return err
		}
		recs[i] = r
	}
	if exp := msgs[0].Metadata.Get(bus.MetaExpected); exp != "" {
		expected, err := strconv.ParseUint(exp, 10, 64)
		if err != nil {
			return fmt.Errorf("publish %s: bad %s %q", msgs[0].UUID, bus.MetaExpected, exp)
		}
		return p.conditional(ctx, expected, msgs, recs)
	}
	return p.deduplicated(ctx, msgs, recs)
}

// deduplicated produces the messages whose ids were not published within
// the window, and reports the earlier positions of the others.
func (p *Publisher) deduplicated(ctx context.Context, msgs []*message.Message, recs []*kgo.Record) error {
	if p.cfg.Dedup == nil {
		return p.produce(ctx, msgs, recs)
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.UUID
	}
	seen, err := p.cfg.Dedup.Lookup(ctx, ids)
	if err != nil {
		return fmt.Errorf("publish: look up published ids: %w", err)
	}
	var newMsgs []*message.Message
	var newRecs []*kgo.Record
	var newIDs []string
	for i, pos := range seen {
		if pos > 0 {
			setPosition(msgs[i], pos)
			continue
		}
		newMsgs, newRecs, newIDs = append(newMsgs, msgs[i]), append(newRecs, recs[i]), append(newIDs, ids[i])
	}
	if len(newMsgs) == 0 {
		return nil
	}
	if err := p.produce(ctx, newMsgs, newRecs); err != nil {
		return err
	}
	positions := make([]uint64, len(newMsgs))
	for i, m := range newMsgs {
		positions[i], _ = bus.Position(m)
	}
	// Stored already: a failure to remember only narrows deduplication.
	_ = p.cfg.Dedup.Remember(context.WithoutCancel(ctx), newIDs, positions, p.cfg.DedupWindow)
	return nil
}

// produce produces recs and waits for every acknowledgement.
func (p *Publisher) produce(ctx context.Context, msgs []*message.Message, recs []*kgo.Record) error {
	results := p.cl.ProduceSync(ctx, recs...)
	var errs []error
	for i, res := range results {
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("produce %s: %w", msgs[i].UUID, res.Err))
			continue
		}
		setPosition(msgs[i], position(res.Record.Offset))
	}
	if len(errs) > 0 {
		return fmt.Errorf("publish %d messages, %d failed: %w", len(msgs), len(errs), errors.Join(errs...))
	}
	return nil
}

// Close implements message.Publisher; the client belongs to the caller.
func (p *Publisher) Close() error { return nil }

func toRecord(topic string, m *message.Message) (*kgo.Record, error) {
	part, typ, id := m.Metadata.Get(bus.MetaPartition), m.Metadata.Get(bus.MetaAggregateType), m.Metadata.Get(bus.MetaAggregateID)
	if part == "" || typ == "" || id == "" {
		return nil, fmt.Errorf("publish %s: message lacks partition or aggregate metadata (use bus.ToMessage)", m.UUID)
	}
	n, err := strconv.Atoi(part)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("publish %s: bad %s %q", m.UUID, bus.MetaPartition, part)
	}
	return &kgo.Record{
		Topic: topic, Partition: int32(n), Key: []byte(id), Value: m.Payload,
		Headers: []kgo.RecordHeader{{Key: hdrEventID, Value: []byte(m.UUID)}, {Key: hdrAggType, Value: []byte(typ)}},
	}, nil
}

func setPosition(m *message.Message, pos uint64) {
	m.Metadata.Set(bus.MetaPosition, strconv.FormatUint(pos, 10))
}
