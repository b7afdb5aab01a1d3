package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/infra/bus"
)

// Defaults of [SubscriberConfig].
const (
	DefaultWindow  = 1
	DefaultBuffer  = 1024
	DefaultBackoff = 500 * time.Millisecond
)

// SubscriberConfig configures a [Subscriber].
type SubscriberConfig struct {
	// Stream is the stream name; default [DefaultStream].
	Stream string
	// StartAfter returns the last position already processed on a
	// partition (0: none); delivery starts right after it. Required: this
	// is where a projection's checkpoint comes in.
	StartAfter func(ctx context.Context, partition int) (uint64, error)
	// Window is how many delivered messages may be neither acked nor
	// nacked at once. 1 (the default) is classic Watermill: the next
	// message comes after Ack. A larger window lets a consumer batch.
	Window int
	// Buffer is how many messages the client fetches ahead; default [DefaultBuffer].
	Buffer int
	// Backoff is the pause before resubscribing after an error; default [DefaultBackoff].
	Backoff time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c *SubscriberConfig) setDefaults() {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Buffer <= 0 {
		c.Buffer = DefaultBuffer
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Subscriber is a Watermill subscriber that delivers one partition of the
// stream per subscription, in stream order, with the Ack and Nack semantics
// of [bus.Deliver].
type Subscriber struct {
	js   jetstream.JetStream
	cfg  SubscriberConfig
	subs bus.Subscriptions
}

var _ message.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a subscriber over js.
func NewSubscriber(js jetstream.JetStream, cfg SubscriberConfig) (*Subscriber, error) {
	if cfg.StartAfter == nil {
		return nil, errors.New("jetstream subscriber: StartAfter is required")
	}
	cfg.setDefaults()
	return &Subscriber{js: js, cfg: cfg}, nil
}

// Subscribe delivers the partition named by topic, a [bus.PartitionTopic].
// The channel closes when ctx is cancelled or the subscriber is closed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.subs.Start(ctx, topic, s.cfg.Window, func(ctx context.Context, part int, out chan<- *message.Message) {
		bus.Deliver(ctx, bus.DeliverConfig{
			Partition: part, StartAfter: s.cfg.StartAfter, Window: s.cfg.Window,
			Backoff: s.cfg.Backoff, Logger: s.cfg.Logger.With("topic", topic),
		}, func(ctx context.Context, start uint64) (bus.Cursor, error) {
			return s.open(ctx, topic, part, start)
		}, out)
	})
}

// Close ends every subscription and waits for their channels to close. It
// is safe to call more than once.
func (s *Subscriber) Close() error { return s.subs.Close() }

// cursor reads a partition with an ordered consumer.
type cursor struct {
	it    jetstream.MessagesContext
	topic string
	part  int
	stop  context.CancelFunc
}

func (s *Subscriber) open(ctx context.Context, topic string, part int, start uint64) (bus.Cursor, error) {
	cons, err := s.js.OrderedConsumer(ctx, s.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{topic + ".>"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer on %s from %d: %w", topic, start, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(s.cfg.Buffer))
	if err != nil {
		return nil, fmt.Errorf("messages on %s: %w", topic, err)
	}
	// Next does not watch a context: stop the iterator when ctx ends.
	ctx, stop := context.WithCancel(ctx)
	go func() { <-ctx.Done(); it.Stop() }()
	return &cursor{it: it, topic: topic, part: part, stop: stop}, nil
}

func (c *cursor) Next(ctx context.Context) (*message.Message, error) {
	jm, err := c.it.Next()
	if err != nil {
		return nil, fmt.Errorf("next on %s: %w", c.topic, err)
	}
	return toWatermill(ctx, jm, c.topic, c.part)
}

func (c *cursor) Close() { c.stop() }

func toWatermill(ctx context.Context, jm jetstream.Msg, topic string, part int) (*message.Message, error) {
	seq, err := streamSeq(jm)
	if err != nil {
		return nil, err
	}
	h := jm.Headers()
	m := message.NewMessageWithContext(ctx, bus.EventIDOf(h.Get(nats.MsgIdHdr)), jm.Data())
	m.Metadata = make(message.Metadata, 4+len(h))
	m.Metadata.Set(bus.MetaPosition, seq)
	m.Metadata.Set(bus.MetaPartition, strconv.Itoa(part))
	for k, v := range h {
		if len(v) > 0 && carried(k) {
			m.Metadata.Set(k, v[0])
		}
	}
	// The subject is <partition topic>.<aggregate type>.<aggregate id>.
	if rest, ok := strings.CutPrefix(jm.Subject(), topic+"."); ok {
		if typ, id, ok := strings.Cut(rest, "."); ok {
			m.Metadata.Set(bus.MetaAggregateType, typ)
			m.Metadata.Set(bus.MetaAggregateID, id)
		}
	}
	return m, nil
}

// streamSeq returns jm's stream sequence, as the decimal string of its
// ack subject: $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…
// (9 tokens), or with <domain>.<account hash> after $JS.ACK (11 or more).
// It is what jm.Metadata() reads, without parsing and allocating the
// other fields for every message.
func streamSeq(jm jetstream.Msg) (string, error) {
	reply := jm.Reply()
	n := strings.Count(reply, ".") + 1
	at := 5
	if n >= 11 {
		at = 7
	}
	rest, ok := strings.CutPrefix(reply, "$JS.ACK.")
	if ok && (n == 9 || n >= 11) {
		for range at - 2 {
			_, rest, _ = strings.Cut(rest, ".")
		}
		seq, _, _ := strings.Cut(rest, ".")
		if _, err := strconv.ParseUint(seq, 10, 64); err == nil && seq[0] != '0' {
			return seq, nil
		}
	}
	return "", fmt.Errorf("message on %s: no stream sequence in its ack subject %q", jm.Subject(), reply)
}

// NewMux returns a subscriber that reads every subscribed partition of the
// stream through one ordered consumer (see bus.Mux): for a reader that
// takes all partitions at once, as a replay does, the server then reads the
// stream once instead of once per partition. cfg's Stream, StartAfter,
// Window, Buffer, Backoff and Logger apply; topic is the partitioned topic.
func NewMux(js jetstream.JetStream, topic string, cfg SubscriberConfig) (*bus.Mux, error) {
	if cfg.StartAfter == nil {
		return nil, errors.New("jetstream mux: StartAfter is required")
	}
	cfg.setDefaults()
	return bus.NewMux(func(ctx context.Context, starts map[int]uint64) (bus.Cursor, error) {
		return openMany(ctx, js, cfg, topic, starts)
	}, bus.MuxConfig{Topic: topic, StartAfter: cfg.StartAfter, Window: cfg.Window, Backoff: cfg.Backoff, Logger: cfg.Logger})
}

// manyCursor reads several partitions with one ordered consumer.
type manyCursor struct {
	it    jetstream.MessagesContext
	topic string
	stop  context.CancelFunc
}

func openMany(ctx context.Context, js jetstream.JetStream, cfg SubscriberConfig, topic string, starts map[int]uint64) (bus.Cursor, error) {
	first := uint64(0)
	filters := make([]string, 0, len(starts))
	for p, s := range starts {
		if first == 0 || s < first {
			first = s
		}
		filters = append(filters, bus.PartitionTopic(topic, p)+".>")
	}
	if stream, err := js.Stream(ctx, cfg.Stream); err == nil {
		if n, err := StreamPartitions(stream); err == nil && n == len(starts) {
			filters = []string{topic + ".>"} // every partition: no filtering at all
		}
	}
	cons, err := js.OrderedConsumer(ctx, cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first,
	})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer on %d partitions of %s from %d: %w", len(starts), topic, first, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(cfg.Buffer))
	if err != nil {
		return nil, fmt.Errorf("messages on %s: %w", topic, err)
	}
	ctx, stop := context.WithCancel(ctx)
	go func() { <-ctx.Done(); it.Stop() }()
	return &manyCursor{it: it, topic: topic, stop: stop}, nil
}

func (c *manyCursor) Next(ctx context.Context) (*message.Message, error) {
	jm, err := c.it.Next()
	if err != nil {
		return nil, fmt.Errorf("next on %s: %w", c.topic, err)
	}
	// The subject is <topic>.<partition>.<aggregate type>.<aggregate id>.
	rest, _ := strings.CutPrefix(jm.Subject(), c.topic+".")
	ps, _, _ := strings.Cut(rest, ".")
	p, err := strconv.Atoi(ps)
	if err != nil {
		return nil, fmt.Errorf("message on %s without a partition", jm.Subject())
	}
	return toWatermill(ctx, jm, bus.PartitionTopic(c.topic, p), p)
}

func (c *manyCursor) Close() { c.stop() }
