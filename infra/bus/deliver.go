package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Cursor reads one partition in order from the position it was opened at.
type Cursor interface {
	// Next blocks for the next message; its context must be ctx.
	Next(ctx context.Context) (*message.Message, error)
	// Close releases the cursor; a blocked Next returns.
	Close()
}

// Open opens a cursor on a partition at position start (the first position
// delivered is start or the first one after it).
type Open func(ctx context.Context, start uint64) (Cursor, error)

// DeliverConfig configures [Deliver].
type DeliverConfig struct {
	// Partition is the partition delivered.
	Partition int
	// StartAfter returns the last position already processed (0: none).
	StartAfter func(ctx context.Context, partition int) (uint64, error)
	// Window is how many delivered messages may be neither acked nor nacked.
	Window int
	// Backoff is the pause before reopening after an error.
	Backoff time.Duration
	Logger  *slog.Logger
}

// Deliver sends a partition's messages to out, in order, until ctx ends.
// It is the delivery contract every backend's subscriber offers:
//
// Ack lets the window move on. Nack of a message restarts delivery at that
// message: it is delivered again, followed by everything after it. With a
// window above 1, messages delivered after the nacked one are withdrawn: a
// consumer that nacks must drop what it receives until the nacked position
// arrives again (their contexts are cancelled too, but only once Deliver
// has seen the Nack). Every message's context is cancelled when its
// delivery generation ends. After an error, delivery resumes right after
// the last message delivered: the consumer will process it, and going back
// would hand it older positions after newer ones.
func Deliver(ctx context.Context, cfg DeliverConfig, open Open, out chan<- *message.Message) {
	var next, sent uint64 // next position to read; last position delivered
	for ctx.Err() == nil {
		if next == 0 {
			last, err := cfg.StartAfter(ctx, cfg.Partition)
			if err != nil {
				cfg.Logger.Warn("start position unavailable, retrying", "partition", cfg.Partition, "err", err)
				Sleep(ctx, cfg.Backoff)
				continue
			}
			next = last + 1
		}
		restart, err := deliverFrom(ctx, cfg.Window, open, next, out, &sent)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			cfg.Logger.Warn("partition delivery interrupted, resuming", "partition", cfg.Partition, "after", sent, "err", err)
			next = sent + 1
			if sent == 0 {
				next = 0
			}
			Sleep(ctx, cfg.Backoff)
		default:
			next, sent = restart, restart-1
		}
	}
}

// deliverFrom streams from position start until ctx ends, an error occurs,
// or a message is nacked; it returns the nacked position and records in
// *sent the position of each message delivered.
func deliverFrom(ctx context.Context, window int, open Open, start uint64, out chan<- *message.Message, sent *uint64) (uint64, error) {
	gen, cancelGen := context.WithCancel(ctx)
	defer cancelGen()
	cur, err := open(gen, start)
	if err != nil {
		return 0, err
	}
	defer cur.Close()

	// The acker watches delivered messages in order: an Ack frees a window
	// slot, a Nack withdraws everything after it and restarts there.
	slots := make(chan struct{}, window)
	inflight := make(chan *message.Message, window)
	nacked := make(chan uint64, 1)
	go func() {
		for {
			select {
			case m := <-inflight:
				select {
				case <-m.Acked():
					<-slots
				case <-m.Nacked():
					pos, _ := Position(m)
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
		case slots <- struct{}{}:
		case <-gen.Done():
			return restartAt(ctx, nacked)
		}
		m, err := cur.Next(gen)
		if err != nil {
			if gen.Err() != nil {
				return restartAt(ctx, nacked)
			}
			return 0, err
		}
		select {
		case out <- m:
			*sent, _ = Position(m)
			inflight <- m
		case <-gen.Done():
			return restartAt(ctx, nacked)
		}
	}
}

// restartAt returns the nacked position, if a nack ended the generation.
func restartAt(ctx context.Context, nacked <-chan uint64) (uint64, error) {
	select {
	case pos := <-nacked:
		return pos, nil
	default:
		return 0, ctx.Err()
	}
}

// Sleep pauses for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Subscriptions keeps a subscriber's running partition subscriptions, so
// that Close ends them all. The zero value is ready to use.
type Subscriptions struct {
	mu     sync.Mutex
	closed bool
	cancel []context.CancelFunc
	wg     sync.WaitGroup
}

// Start runs deliver for the partition named by topic, a [PartitionTopic],
// and returns the channel it sends to (buffered to window), which closes
// when ctx is cancelled or Close is called.
func (s *Subscriptions) Start(ctx context.Context, topic string, window int, deliver func(ctx context.Context, partition int, out chan<- *message.Message)) (<-chan *message.Message, error) {
	_, part, err := ParsePartitionTopic(topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("subscribe: subscriber is closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = append(s.cancel, cancel)
	out := make(chan *message.Message, window)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		deliver(ctx, part, out)
	}()
	return out, nil
}

// Close ends every subscription and waits for their channels to close. It
// is safe to call more than once.
func (s *Subscriptions) Close() error {
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
