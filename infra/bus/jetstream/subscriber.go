package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
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
// stream per subscription, in stream order.
//
// Ack lets the window move on. Nack of a message restarts delivery at that
// message: it is delivered again, followed by everything after it. With a
// window above 1, messages delivered after the nacked one are withdrawn:
// a consumer that nacks must drop what it receives until the nacked
// position arrives again (their contexts are cancelled too, but only once
// the subscriber has seen the Nack). Every message's context is cancelled
// when its delivery generation ends.
type Subscriber struct {
	js  jetstream.JetStream
	cfg SubscriberConfig

	mu     sync.Mutex
	closed bool
	cancel []context.CancelFunc
	wg     sync.WaitGroup
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
	if _, _, err := bus.ParsePartitionTopic(topic); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("subscribe: subscriber is closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = append(s.cancel, cancel)
	out := make(chan *message.Message, s.cfg.Window)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		s.run(ctx, topic, out)
	}()
	return out, nil
}

// Close ends every subscription and waits for their channels to close. It
// is safe to call more than once.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.cancel {
		c()
	}
	s.cancel = nil
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Subscriber) run(ctx context.Context, topic string, out chan<- *message.Message) {
	_, part, _ := bus.ParsePartitionTopic(topic)
	log := s.cfg.Logger.With("topic", topic)
	var next, sent uint64 // next position to read; last position delivered
	for ctx.Err() == nil {
		if next == 0 {
			last, err := s.cfg.StartAfter(ctx, part)
			if err != nil {
				log.Warn("start position unavailable, retrying", "err", err)
				sleep(ctx, s.cfg.Backoff)
				continue
			}
			next = last + 1
		}
		restart, err := s.deliver(ctx, topic, part, next, out, &sent)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// Resume right after what was delivered: the consumer will
			// process it, and going back would hand it older positions
			// after newer ones.
			log.Warn("partition delivery interrupted, resuming", "after", sent, "err", err)
			next = sent + 1
			if sent == 0 {
				next = 0
			}
			sleep(ctx, s.cfg.Backoff)
		default:
			next, sent = restart, restart-1
		}
	}
}

// deliver streams the partition from position start until ctx ends, an
// error occurs, or a message is nacked; it returns the nacked position and
// records in *sent the position of each message delivered.
func (s *Subscriber) deliver(ctx context.Context, topic string, part int, start uint64, out chan<- *message.Message, sent *uint64) (uint64, error) {
	cons, err := s.js.OrderedConsumer(ctx, s.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{topic + ".>"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return 0, fmt.Errorf("ordered consumer on %s from %d: %w", topic, start, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(s.cfg.Buffer))
	if err != nil {
		return 0, fmt.Errorf("messages on %s: %w", topic, err)
	}
	gen, cancelGen := context.WithCancel(ctx)
	defer cancelGen()
	go func() { <-gen.Done(); it.Stop() }()

	// The acker watches delivered messages in order: an Ack frees a window
	// slot, a Nack withdraws everything after it and restarts there.
	window := make(chan struct{}, s.cfg.Window)
	inflight := make(chan *message.Message, s.cfg.Window)
	nacked := make(chan uint64, 1)
	go func() {
		for {
			select {
			case m := <-inflight:
				select {
				case <-m.Acked():
					<-window
				case <-m.Nacked():
					pos, _ := bus.Position(m)
					nacked <- pos
					cancelGen()
					return
				case <-gen.Done():
					return
				}
			case <-gen.Done():
				return
			}
		}
	}()

	for {
		select {
		case window <- struct{}{}:
		case <-gen.Done():
			return restartAt(nacked, ctx)
		}
		jm, err := it.Next()
		if err != nil {
			if gen.Err() != nil {
				return restartAt(nacked, ctx)
			}
			return 0, fmt.Errorf("next on %s: %w", topic, err)
		}
		m, err := toWatermill(gen, jm, topic, part)
		if err != nil {
			return 0, err
		}
		select {
		case out <- m:
			*sent = positionOf(m)
			inflight <- m
		case <-gen.Done():
			return restartAt(nacked, ctx)
		}
	}
}

// restartAt returns the nacked position, if a nack ended the generation.
func restartAt(nacked <-chan uint64, ctx context.Context) (uint64, error) {
	select {
	case pos := <-nacked:
		return pos, nil
	default:
		return 0, ctx.Err()
	}
}

func toWatermill(ctx context.Context, jm jetstream.Msg, topic string, part int) (*message.Message, error) {
	md, err := jm.Metadata()
	if err != nil {
		return nil, fmt.Errorf("message metadata: %w", err)
	}
	id := jm.Headers().Get(nats.MsgIdHdr)
	m := message.NewMessageWithContext(ctx, id, jm.Data())
	m.Metadata.Set(bus.MetaPosition, strconv.FormatUint(md.Sequence.Stream, 10))
	m.Metadata.Set(bus.MetaPartition, strconv.Itoa(part))
	// The subject is <partition topic>.<aggregate type>.<aggregate id>.
	if rest, ok := strings.CutPrefix(jm.Subject(), topic+"."); ok {
		if typ, id, ok := strings.Cut(rest, "."); ok {
			m.Metadata.Set(bus.MetaAggregateType, typ)
			m.Metadata.Set(bus.MetaAggregateID, id)
		}
	}
	return m, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// positionOf is the position a delivered message carries.
func positionOf(m *message.Message) uint64 {
	pos, _ := bus.Position(m)
	return pos
}
