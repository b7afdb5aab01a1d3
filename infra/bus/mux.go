package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// OpenMany opens one cursor over several partitions of a log, in log
// order, each from its own first position (messages before it may come
// too; the caller drops them).
type OpenMany func(ctx context.Context, starts map[int]uint64) (Cursor, error)

// MuxConfig configures a [Mux].
type MuxConfig struct {
	// Topic is the partitioned topic; subscriptions name [PartitionTopic]s of it.
	Topic string
	// StartAfter returns the last position already processed of a
	// partition (0: none). Required.
	StartAfter func(ctx context.Context, partition int) (uint64, error)
	// Window is how many messages of one partition may be neither acked
	// nor nacked at once; default 1.
	Window int
	// Backoff is the pause before reopening after an error; default 500ms.
	Backoff time.Duration
	Logger  *slog.Logger
}

// Mux is a Watermill subscriber that reads every partition subscribed to
// through one cursor and hands each partition its messages, with the
// semantics of [Deliver]. One cursor over the log costs the broker far
// less than one filtered reader per partition when a subscriber takes
// most partitions at once, as a replay does. Partitions share the cursor:
// one whose window is full holds the others back, and a Nack or a change
// of subscriptions reopens the cursor for all.
type Mux struct {
	open OpenMany
	cfg  MuxConfig

	mu      sync.Mutex
	subs    map[int]*muxSub
	changed chan struct{} // a subscription came or went, or a partition nacked
	running bool
	closed  bool
	stop    context.CancelFunc
	done    chan struct{}
	closing chan struct{} // closed by Close
}

var _ message.Subscriber = (*Mux)(nil)

type muxSub struct {
	ctx context.Context
	out chan *message.Message
	// slots and pending count and hold the delivered messages that are
	// neither acked nor withdrawn, in order.
	slots   chan struct{}
	pending chan *message.Message
	// next is the next position to deliver, 0 until known (run loop only);
	// nacked holds a position to restart at.
	next   uint64
	nacked chan uint64
	// gone is closed by the run loop once it no longer sends to out.
	gone chan struct{}
}

// ack watches s's delivered messages in order: an Ack, or a withdrawal (the
// pass that delivered it ended), frees a window slot; a Nack asks the run
// loop to deliver again from there.
func (x *Mux) ack(s *muxSub) {
	for {
		select {
		case m := <-s.pending:
			select {
			case <-m.Acked():
			case <-m.Nacked():
				pos, _ := Position(m)
				select {
				case s.nacked <- pos:
				default:
				}
				x.signal()
			case <-m.Context().Done():
			case <-s.ctx.Done():
				return
			case <-x.closing:
				return
			}
			<-s.slots
		case <-s.ctx.Done():
			return
		case <-x.closing:
			return
		}
	}
}

// NewMux returns a multiplexing subscriber over open.
func NewMux(open OpenMany, cfg MuxConfig) (*Mux, error) {
	if cfg.StartAfter == nil {
		return nil, errors.New("mux: StartAfter is required")
	}
	if cfg.Window <= 0 {
		cfg.Window = 1
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Mux{open: open, cfg: cfg, subs: map[int]*muxSub{}, changed: make(chan struct{}, 1), closing: make(chan struct{})}, nil
}

// Subscribe delivers the partition named by topic until ctx ends or the
// mux is closed.
func (x *Mux) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	t, p, err := ParsePartitionTopic(topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if t != x.cfg.Topic {
		return nil, fmt.Errorf("subscribe %s: this subscriber reads topic %s", topic, x.cfg.Topic)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil, errors.New("subscribe: subscriber is closed")
	}
	if _, dup := x.subs[p]; dup {
		return nil, fmt.Errorf("subscribe %s: already subscribed", topic)
	}
	s := &muxSub{ctx: ctx, out: make(chan *message.Message, x.cfg.Window), slots: make(chan struct{}, x.cfg.Window),
		pending: make(chan *message.Message, x.cfg.Window), nacked: make(chan uint64, 1), gone: make(chan struct{})}
	x.subs[p] = s
	go x.ack(s)
	if !x.running {
		x.running = true
		var runCtx context.Context
		runCtx, x.stop = context.WithCancel(context.Background())
		x.done = make(chan struct{})
		go x.run(runCtx)
	}
	x.signal()
	go func() {
		select {
		case <-ctx.Done():
		case <-x.closing:
		}
		x.mu.Lock()
		if x.subs[p] == s {
			delete(x.subs, p)
		}
		x.mu.Unlock()
		x.signal()
		<-s.gone
		close(s.out)
	}()
	return s.out, nil
}

// Close ends every subscription.
func (x *Mux) Close() error {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return nil
	}
	x.closed = true
	close(x.closing)
	subs := x.subs
	x.subs = map[int]*muxSub{}
	stop, done := x.stop, x.done
	x.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	for _, s := range subs {
		select {
		case <-s.gone:
		default:
			close(s.gone)
		}
	}
	return nil
}

func (x *Mux) signal() {
	select {
	case x.changed <- struct{}{}:
	default:
	}
}

// run reads the cursor and dispatches, reopening it whenever the
// subscriptions change, a partition nacks, or the cursor fails.
func (x *Mux) run(ctx context.Context) {
	defer close(x.done)
	var gone map[int]*muxSub // subscriptions dropped, whose gone is closed at the next reopen
	for ctx.Err() == nil {
		x.mu.Lock()
		subs := make(map[int]*muxSub, len(x.subs))
		for p, s := range x.subs {
			subs[p] = s
		}
		x.mu.Unlock()
		for p, s := range gone {
			if subs[p] != s {
				close(s.gone)
			}
		}
		gone = subs
		if len(subs) == 0 {
			select {
			case <-x.changed:
			case <-ctx.Done():
			}
			continue
		}
		err := x.pass(ctx, subs)
		if err != nil && ctx.Err() == nil {
			x.cfg.Logger.Warn("partition delivery interrupted, resuming", "topic", x.cfg.Topic, "err", err)
			Sleep(ctx, x.cfg.Backoff)
		}
	}
	for _, s := range gone {
		select {
		case <-s.gone:
		default:
			close(s.gone)
		}
	}
}

// pass opens the cursor for subs and dispatches until something asks for
// a reopen (nil) or fails.
func (x *Mux) pass(ctx context.Context, subs map[int]*muxSub) error {
	starts := make(map[int]uint64, len(subs))
	for p, s := range subs {
		select {
		case pos := <-s.nacked:
			s.next = min(s.next, pos)
		default:
		}
		if s.next == 0 {
			last, err := x.cfg.StartAfter(ctx, p)
			if err != nil {
				return fmt.Errorf("start position of partition %d: %w", p, err)
			}
			s.next = last + 1
		}
		starts[p] = s.next
	}
	gen, cancel := context.WithCancel(ctx)
	defer cancel()
	cur, err := x.open(gen, starts)
	if err != nil {
		return err
	}
	defer cur.Close()
	go func() {
		select {
		case <-x.changed:
			cancel()
		case <-gen.Done():
		}
	}()
	for {
		m, err := cur.Next(gen)
		if err != nil {
			if gen.Err() != nil {
				return nil
			}
			return err
		}
		p, err := strconv.Atoi(m.Metadata.Get(MetaPartition))
		s := subs[p]
		if err != nil || s == nil {
			continue
		}
		pos, _ := Position(m)
		if pos < s.next {
			continue // delivered before this pass
		}
		select {
		case s.slots <- struct{}{}:
		case <-gen.Done():
			return nil
		case <-s.ctx.Done():
			continue
		}
		select {
		case s.out <- m:
			s.next = pos + 1
			s.pending <- m
		case <-gen.Done():
			<-s.slots
			return nil
		case <-s.ctx.Done():
			<-s.slots
		}
	}
}
