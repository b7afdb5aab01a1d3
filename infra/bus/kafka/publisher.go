package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// Reserve looks up ids and reserves, for ttl, those not seen yet for
	// this publish. It returns per id the position the event was stored at,
	// [InFlight] when another publish of it holds the reservation, or 0
	// when this publish reserved it.
	Reserve(ctx context.Context, ids []string, ttl time.Duration) ([]uint64, error)
	// Remember records the positions of stored ids for window.
	Remember(ctx context.Context, ids []string, positions []uint64, window time.Duration) error
	// Release drops this publish's reservations of ids that were not stored.
	Release(ctx context.Context, ids []string) error
}

// InFlight is the position [Dedup.Reserve] reports for an id another
// publish is storing.
const InFlight = ^uint64(0)

// bookkeeping bounds the Redis calls made after a produce, which must not
// follow the caller's cancellation.
const bookkeeping = 5 * time.Second

// reserveTTL bounds a reservation whose publisher died before it
// remembered or released it.
const reserveTTL = 30 * time.Second

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
	// Lease is how long a fence claim lasts (at least [MinLease]); a
	// conditional produce gives up after half of it. Default [DefaultLease].
	Lease time.Duration
	// Dedup, when set, drops republished event ids within DedupWindow
	// (default [DefaultDedupWindow]).
	Dedup       Dedup
	DedupWindow time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Publisher is a Watermill publisher over Kafka. Publish produces every
// message to its evflow partition and returns once all in-sync replicas
// acknowledged each one.
type Publisher struct {
	cl, fenced *kgo.Client
	scan       *Scanner
	cfg        PublisherConfig
	log        *slog.Logger
}

var _ message.Publisher = (*Publisher)(nil)

// ProducerOpts are the producer options evflow needs: explicit partitions,
// acks from all in-sync replicas, and idempotence (franz-go's default), so
// the client's own retries are stored once and a produce is failed only
// when it surely was not stored.
func ProducerOpts() []kgo.Opt {
	return []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks())}
}

// FencedProducerOpts are the options of the client of conditional
// appends: ProducerOpts, and a produce that gives up within a quarter of
// the lease even when its request is in flight (a fence claim must not
// outlive it). Such a produce may still land; the fence finds it in the
// log.
func FencedProducerOpts(lease time.Duration) []kgo.Opt {
	lease = max(lease, MinLease)
	return append(ProducerOpts(),
		kgo.AllowIdempotentProduceCancellation(),
		kgo.RecordDeliveryTimeout(lease/4),
		kgo.ProduceRequestTimeout(lease/4),
		kgo.RequestTimeoutOverhead(lease/8),
	)
}

// MinLease is the shortest fence lease (franz-go's delivery timeout is at
// least 1s).
const MinLease = 4 * time.Second

// NewPublisher returns a publisher over cl, a client built with
// [ProducerOpts]; conditional appends go through fenced, built with
// [FencedProducerOpts], and scan reads the log when the fence is behind
// it. fenced and scan may be nil when cfg.Fence is.
func NewPublisher(cl, fenced *kgo.Client, scan *Scanner, cfg PublisherConfig) *Publisher {
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultPublishTimeout
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	cfg.Lease = max(cfg.Lease, MinLease)
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Publisher{cl: cl, fenced: fenced, scan: scan, cfg: cfg, log: log}
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
// the window, and reports the earlier positions of the others. An id twice
// in msgs is stored once.
func (p *Publisher) deduplicated(ctx context.Context, msgs []*message.Message, recs []*kgo.Record) error {
	if p.cfg.Dedup == nil {
		_, err := p.produce(ctx, p.cl, msgs, recs)
		return err
	}
	first := map[string]int{} // dedup key → index of its first message
	keys := make([]string, len(msgs))
	var ids []string
	for i, m := range msgs {
		keys[i] = bus.DedupKey(m)
		if _, dup := first[keys[i]]; !dup {
			first[keys[i]] = i
			ids = append(ids, keys[i])
		}
	}
	seen, err := p.cfg.Dedup.Reserve(ctx, ids, min(reserveTTL, p.cfg.DedupWindow))
	if err != nil {
		return fmt.Errorf("publish: reserve event ids: %w", err)
	}
	var todo []int // indexes in msgs of what this publish stores
	var reserved []string
	for j, id := range ids {
		i := first[id]
		switch pos := seen[j]; {
		case pos == InFlight:
			err = fmt.Errorf("publish %s: another publish of this event is in flight; retry", msgs[i].UUID)
		case pos > 0:
			setPosition(msgs[i], pos)
			msgs[i].Metadata.Set(bus.MetaDuplicate, "1")
		default:
			todo, reserved = append(todo, i), append(reserved, id)
		}
	}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeeping)
	defer cancel()
	if err != nil {
		_ = p.cfg.Dedup.Release(bg, reserved)
		return err
	}
	sub := make([]*message.Message, len(todo))
	subRecs := make([]*kgo.Record, len(todo))
	subKeys := make([]string, len(todo))
	for k, i := range todo {
		sub[k], subRecs[k], subKeys[k] = msgs[i], recs[i], keys[i]
	}
	stored, err := p.produce(ctx, p.cl, sub, subRecs)
	var keep, drop []string
	var positions []uint64
	for k, m := range sub {
		if stored[k] {
			pos, _ := bus.Position(m)
			keep, positions = append(keep, subKeys[k]), append(positions, pos)
		} else {
			drop = append(drop, subKeys[k])
		}
	}
	// Stored records are remembered even when others failed, so the
	// caller's retry stores only the rest. A failure to remember only
	// narrows deduplication.
	if len(keep) > 0 {
		_ = p.cfg.Dedup.Remember(bg, keep, positions, p.cfg.DedupWindow)
	}
	if len(drop) > 0 {
		_ = p.cfg.Dedup.Release(bg, drop)
	}
	if err != nil {
		return err
	}
	for i, m := range msgs { // later copies of an id take its position
		if j := first[keys[i]]; j != i {
			setPosition(m, positionOf(msgs[j]))
			m.Metadata.Set(bus.MetaDuplicate, "1")
		}
	}
	return nil
}

// produce produces recs with cl and waits for every result; it sets the
// position of each stored message and reports which were stored.
func (p *Publisher) produce(ctx context.Context, cl *kgo.Client, msgs []*message.Message, recs []*kgo.Record) ([]bool, error) {
	index := make(map[*kgo.Record]int, len(recs))
	for i, r := range recs {
		index[r] = i
	}
	stored := make([]bool, len(recs))
	var errs []error
	// Results come in the order records completed, not the input order.
	for _, res := range cl.ProduceSync(ctx, recs...) {
		i := index[res.Record]
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("produce %s: %w", msgs[i].UUID, res.Err))
			continue
		}
		stored[i] = true
		setPosition(msgs[i], position(res.Record.Offset))
	}
	if len(errs) > 0 {
		return stored, fmt.Errorf("publish %d messages, %d failed: %w", len(msgs), len(errs), errors.Join(errs...))
	}
	return stored, nil
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
	hdrs := []kgo.RecordHeader{{Key: hdrEventID, Value: []byte(m.UUID)}, {Key: hdrAggType, Value: []byte(typ)}}
	for k, v := range m.Metadata {
		if carried(k) {
			hdrs = append(hdrs, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	return &kgo.Record{Topic: topic, Partition: int32(n), Key: []byte(id), Value: m.Payload, Headers: hdrs}, nil
}

func setPosition(m *message.Message, pos uint64) {
	m.Metadata.Set(bus.MetaPosition, strconv.FormatUint(pos, 10))
}

func positionOf(m *message.Message) uint64 {
	pos, _ := bus.Position(m)
	return pos
}
