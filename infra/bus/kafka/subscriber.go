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

// Defaults of [SubscriberConfig].
const (
	DefaultWindow  = 1
	DefaultBackoff = 500 * time.Millisecond
)

// SubscriberConfig configures a [Subscriber].
type SubscriberConfig struct {
	// Brokers are the seed brokers; required.
	Brokers []string
	// Topic is the event topic; default [DefaultTopic].
	Topic string
	// StartAfter returns the last position already processed on a
	// partition (0: none); delivery starts right after it. Required.
	StartAfter func(ctx context.Context, partition int) (uint64, error)
	// Window is how many delivered messages may be neither acked nor
	// nacked at once; default [DefaultWindow].
	Window int
	// Backoff is the pause before reading again after an error; default [DefaultBackoff].
	Backoff time.Duration
	// Opts are added to the subscriber's clients (TLS, SASL, fetch sizes).
	Opts []kgo.Opt
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Subscriber is a Watermill subscriber that delivers one partition of the
// event topic per subscription, in offset order, with the Ack and Nack
// semantics of [bus.Deliver]. A subscription reads its partition directly
// (no consumer group): a projection's checkpoint, not a committed offset,
// says where to start, and partition ownership is decided by [Group].
type Subscriber struct {
	cfg  SubscriberConfig
	subs bus.Subscriptions
}

var _ message.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a subscriber configured by cfg.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if cfg.StartAfter == nil || len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka subscriber: Brokers and StartAfter are required")
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Subscriber{cfg: cfg}, nil
}

// Subscribe delivers the partition named by topic, a [bus.PartitionTopic]
// of the event topic. The channel closes when ctx is cancelled or the
// subscriber is closed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if t, _, err := bus.ParsePartitionTopic(topic); err == nil && t != s.cfg.Topic {
		return nil, fmt.Errorf("subscribe %s: this subscriber reads topic %s", topic, s.cfg.Topic)
	}
	return s.subs.Start(ctx, topic, s.cfg.Window, func(ctx context.Context, part int, out chan<- *message.Message) {
		bus.Deliver(ctx, bus.DeliverConfig{
			Partition: part, StartAfter: s.cfg.StartAfter, Window: s.cfg.Window,
			Backoff: s.cfg.Backoff, Logger: s.cfg.Logger.With("topic", topic),
		}, func(ctx context.Context, start uint64) (bus.Cursor, error) {
			return s.open(part, start)
		}, out)
	})
}

// Close ends every subscription and waits for their channels to close.
func (s *Subscriber) Close() error { return s.subs.Close() }

// cursor reads one partition from an offset with a client of its own.
type cursor struct {
	cl      *kgo.Client
	part    int
	pending []*kgo.Record
}

func (s *Subscriber) open(part int, start uint64) (bus.Cursor, error) {
	at := kgo.NewOffset().At(offsetAfter(start - 1))
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.cfg.Topic: {int32(part): at}}),
		kgo.FetchMaxWait(250 * time.Millisecond),
		// A start the log no longer holds (retention) is an error, not a
		// silent jump to what is left.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
	}, s.cfg.Opts...)...)
	if err != nil {
		return nil, fmt.Errorf("read partition %d from %d: %w", part, start, err)
	}
	return &cursor{cl: cl, part: part}, nil
}

func (c *cursor) Next(ctx context.Context) (*message.Message, error) {
	for len(c.pending) == 0 {
		fs := c.cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return nil, fmt.Errorf("fetch partition %d: %w", c.part, errs[0].Err)
		}
		c.pending = fs.Records()
	}
	r := c.pending[0]
	c.pending = c.pending[1:]
	id, typ, aggID := recordMeta(r)
	m := message.NewMessageWithContext(ctx, id, r.Value)
	m.Metadata.Set(bus.MetaPosition, strconv.FormatUint(position(r.Offset), 10))
	m.Metadata.Set(bus.MetaPartition, strconv.Itoa(c.part))
	if typ != "" && aggID != "" {
		m.Metadata.Set(bus.MetaAggregateType, typ)
		m.Metadata.Set(bus.MetaAggregateID, aggID)
	}
	for _, h := range r.Headers {
		if carried(h.Key) {
			m.Metadata.Set(h.Key, string(h.Value))
		}
	}
	return m, nil
}

func (c *cursor) Close() { c.cl.Close() }
