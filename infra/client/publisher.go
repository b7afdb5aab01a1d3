package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/evflow/evflow/handlers"
)

// Defaults of a [Publisher].
const (
	// DefaultPublishBatch is how many launches one request carries at most.
	DefaultPublishBatch = 500
	// DefaultLinger is how long a batch that is not full waits for more
	// launches before it is sent.
	DefaultLinger = 5 * time.Millisecond
	// DefaultMaxInFlight is how many requests may await their answer at once.
	DefaultMaxInFlight = 8
)

// PublisherOption configures a [Publisher].
type PublisherOption func(*publisherConfig)

type publisherConfig struct {
	batch, inFlight int
	linger          time.Duration
}

// WithPublishBatch sets the most launches per request (1 to
// handlers.DefaultMaxLaunchBatch); default [DefaultPublishBatch].
func WithPublishBatch(n int) PublisherOption {
	return func(c *publisherConfig) { c.batch = min(max(n, 1), handlers.DefaultMaxLaunchBatch) }
}

// WithLinger sets how long a batch waits for more launches; default
// [DefaultLinger]. 0 sends whatever is queued at once.
func WithLinger(d time.Duration) PublisherOption {
	return func(c *publisherConfig) { c.linger = max(d, 0) }
}

// WithMaxInFlight bounds the requests awaiting their answer; default
// [DefaultMaxInFlight]. Publish blocks when they are all busy and the
// next batch is full.
func WithMaxInFlight(n int) PublisherOption {
	return func(c *publisherConfig) { c.inFlight = max(n, 1) }
}

// Ack is the acknowledgement of one published launch.
type Ack struct {
	done chan struct{}
	err  error
}

// Done is closed once the launch is acknowledged or has failed.
func (a *Ack) Done() <-chan struct{} { return a.done }

// Err is nil once the server acknowledged the launch: the broker stored
// it. Call it after Done is closed; before, it is nil too.
func (a *Ack) Err() error {
	select {
	case <-a.done:
		return a.err
	default:
		return nil
	}
}

// Wait waits for the acknowledgement and returns Err, or ctx's error.
func (a *Ack) Wait(ctx context.Context) error {
	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Publisher sends launches asynchronously: it gathers them into batches,
// sends each as one request with up to a bounded number in flight, and
// acknowledges each launch once the server has answered for its batch,
// that is once the broker stored it. Nothing is acknowledged before that.
// A launch without an id gets a UUID when published, so the client's
// retries are deduplicated by the server. It is safe for concurrent use.
type Publisher struct {
	c   *Client
	cfg publisherConfig

	mu      sync.Mutex
	batch   []handlers.Launch
	acks    []*Ack
	timer   *time.Timer
	closed  bool
	slots   chan struct{}
	pending sync.WaitGroup
}

// NewPublisher returns an asynchronous publisher of launches over c.
func (c *Client) NewPublisher(opts ...PublisherOption) *Publisher {
	cfg := publisherConfig{batch: DefaultPublishBatch, linger: DefaultLinger, inFlight: DefaultMaxInFlight}
	for _, o := range opts {
		o(&cfg)
	}
	return &Publisher{c: c, cfg: cfg, slots: make(chan struct{}, cfg.inFlight)}
}

// ErrPublisherClosed is the error of a launch published after Close.
var ErrPublisherClosed = errors.New("client: publisher closed")

// Publish queues l and returns its acknowledgement. It blocks while the
// batch it completes waits for a free request slot (backpressure).
func (p *Publisher) Publish(l handlers.Launch) *Ack {
	a := &Ack{done: make(chan struct{})}
	if l.ID == "" {
		l.ID = uuid.NewString()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		a.err = ErrPublisherClosed
		close(a.done)
		return a
	}
	p.batch, p.acks = append(p.batch, l), append(p.acks, a)
	if len(p.batch) >= p.cfg.batch || p.cfg.linger == 0 {
		batch, acks := p.take()
		p.mu.Unlock()
		p.send(batch, acks)
		return a
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(p.cfg.linger, p.lingered)
	}
	p.mu.Unlock()
	return a
}

// lingered sends the batch the linger timer waited for.
func (p *Publisher) lingered() {
	p.mu.Lock()
	batch, acks := p.take()
	p.mu.Unlock()
	if len(batch) > 0 {
		p.send(batch, acks)
	}
}

// take removes the current batch; p.mu is held.
func (p *Publisher) take() ([]handlers.Launch, []*Ack) {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	batch, acks := p.batch, p.acks
	p.batch, p.acks = nil, nil
	return batch, acks
}

// send waits for a slot, then sends the batch in the background.
func (p *Publisher) send(batch []handlers.Launch, acks []*Ack) {
	p.slots <- struct{}{}
	p.pending.Add(1)
	go func() {
		defer p.pending.Done()
		defer func() { <-p.slots }()
		_, err := p.c.Launch(context.Background(), batch...)
		for _, a := range acks {
			a.err = err
			close(a.done)
		}
	}()
}

// Flush sends what is queued and waits until every launch published so far
// is acknowledged or has failed, or ctx ends.
func (p *Publisher) Flush(ctx context.Context) error {
	p.lingered()
	done := make(chan struct{})
	go func() { p.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes and refuses further launches.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return p.Flush(ctx)
}
