// Package projector runs projections: for every partition assigned to it, it subscribes to
// the bus from the projection's checkpoint, gathers what has arrived into a
// batch, decodes it, applies it, and acknowledges it once it is durable.
//
// A failed apply is retried in place with backoff, never skipped: the
// partition waits (others go on) until its store is back, so nothing
// acknowledged by the broker is lost and order is kept.
//
// An event that can never be applied is parked as a dead letter (see
// [DeadLetterBox]) and its partition moves on: one that cannot be decoded
// at once, one whose apply fails with a permanent error (events.IsPermanent)
// after [Config.MaxAttempts] attempts on its own. Later events of a parked
// event's aggregate are parked behind it, so that redriving the letters
// applies the aggregate's events in order. A parked event still counts for
// the checkpoint: it is handed to the projection with a nil Payload, which
// projections skip.
package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/projections"
)

// Defaults of [Config].
const (
	DefaultMaxBatch     = 256
	DefaultLinger       = time.Millisecond
	DefaultMinBackoff   = 50 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
	DefaultApplyTimeout = 30 * time.Second
	DefaultMaxAttempts  = 5
)

// Lingering is the [Config.Linger] of a linger given as a flag, where 0
// means none.
func Lingering(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// StartAfter returns the last position processed on a partition.
type StartAfter func(ctx context.Context, partition int) (uint64, error)

// NewSubscriber builds a subscriber that resumes after startAfter and lets
// window messages be unacknowledged at once.
type NewSubscriber func(startAfter StartAfter, window int) (message.Subscriber, error)

// Config configures a [Runner].
type Config struct {
	// Topic and Partitions name the partitioned stream. Required.
	Topic      string
	Partitions int
	// MaxBatch bounds the events applied in one batch; default [DefaultMaxBatch].
	MaxBatch int
	// Linger is how long a batch that is not full waits for more events
	// after its first one; default [DefaultLinger]. Under load it lets a
	// batch fill, so that a store round trip carries many events; when
	// idle it adds at most Linger to an event's latency. A negative
	// Linger applies whatever has arrived at once.
	Linger time.Duration
	// MinBackoff and MaxBackoff bound the pause between retries of a failed batch.
	MinBackoff, MaxBackoff time.Duration
	// ApplyTimeout bounds one attempt to apply a batch, so a store call
	// that never returns becomes a logged, retried failure rather than a
	// silently stalled partition; default [DefaultApplyTimeout].
	ApplyTimeout time.Duration
	// DeadLetters parks the events that can never be applied. Without it
	// an undecodable event is logged and skipped, and a permanent apply
	// failure is retried for ever.
	DeadLetters DeadLetterBox
	// MaxAttempts is how often an event failing with a permanent error is
	// tried on its own before it is parked; default [DefaultMaxAttempts].
	MaxAttempts int
	// Registry decodes event data; default events.Domain().
	Registry *events.Registry
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Observer is told of every batch, for metrics and traces; default
	// none.
	Observer Observer
}

func (c *Config) setDefaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = DefaultApplyTimeout
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Registry == nil {
		c.Registry = events.Domain()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Topic == "" {
		errs = append(errs, errors.New("projector: Topic is required"))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("projector: Partitions must be at least 1, got %d", c.Partitions))
	}
	return errors.Join(errs...)
}

// Runner applies one projection to the partitions assigned to it. A
// partition is consumed by one worker, from the projection's checkpoint, in
// order; [Runner.Assign] starts it and [Runner.Revoke] drains it.
//
// Lock order: Runner.switching, then Runner.mu; workers take neither.
type Runner struct {
	cfg     Config
	name    string
	proj    atomic.Pointer[current]
	sub     message.Subscriber
	log     *slog.Logger
	applied atomic.Uint64
	skipped atomic.Uint64
	parked  atomic.Uint64
	last    []atomic.Uint64

	// switching is held for reading by Assign and Revoke, and for
	// writing by Switch, so that no partition is taken or given while
	// the projector changes.
	switching sync.RWMutex
	mu        sync.Mutex
	ctx       context.Context // set by Start; cancelled by Stop
	cancel    context.CancelFunc
	workers   map[int]*worker
}

// worker consumes one partition.
type worker struct {
	drain  chan struct{} // closed to stop after the batch in hand
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a runner of proj; newSub builds its subscriber.
func New(cfg Config, proj projections.Projector, newSub NewSubscriber) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Runner{
		cfg: cfg, name: proj.Name(),
		log:     cfg.Logger.With("projection", proj.Name()),
		last:    make([]atomic.Uint64, cfg.Partitions),
		workers: map[int]*worker{},
	}
	r.proj.Store(&current{proj})
	sub, err := newSub(r.Checkpoint, 2*cfg.MaxBatch)
	if err != nil {
		return nil, fmt.Errorf("projector %s: %w", proj.Name(), err)
	}
	r.sub = sub
	return r, nil
}

// current boxes the projector a runner applies.
type current struct{ projections.Projector }

// projector is the projector the runner applies now (see [Runner.Switch]).
func (r *Runner) projector() projections.Projector { return r.proj.Load().Projector }

// Name is the projection's name.
func (r *Runner) Name() string { return r.name }

// Applied is the number of events applied (including idempotent no-ops).
func (r *Runner) Applied() uint64 { return r.applied.Load() }

// Skipped is the number of undecodable events skipped (without a
// [Config.DeadLetters]).
func (r *Runner) Skipped() uint64 { return r.skipped.Load() }

// Parked is the number of events this runner parked as dead letters.
func (r *Runner) Parked() uint64 { return r.parked.Load() }

// Checkpoint is the projection's stored checkpoint of partition.
func (r *Runner) Checkpoint(ctx context.Context, partition int) (uint64, error) {
	return r.projector().Checkpoint(ctx, partition)
}

// Position is the last position applied on partition by this runner.
func (r *Runner) Position(partition int) uint64 { return r.last[partition].Load() }

// Start readies the runner; work under ctx ends when ctx is cancelled or
// Stop is called. Assign partitions after Start.
func (r *Runner) Start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ctx, r.cancel = context.WithCancel(ctx)
}

// Assign starts consuming partition p, unless it already is.
func (r *Runner) Assign(p int) {
	r.switching.RLock()
	defer r.switching.RUnlock()
	r.assign(p)
}

func (r *Runner) assign(p int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil || r.ctx.Err() != nil || r.workers[p] != nil || p < 0 || p >= r.cfg.Partitions {
		return
	}
	subCtx, cancel := context.WithCancel(r.ctx)
	ch, err := r.sub.Subscribe(subCtx, bus.PartitionTopic(r.cfg.Topic, p))
	if err != nil {
		cancel()
		r.log.Error("cannot subscribe", "partition", p, "err", err)
		return
	}
	w := &worker{drain: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	r.workers[p] = w
	go func() {
		defer close(w.done)
		r.consume(r.ctx, p, ch, w.drain)
	}()
}

// Revoke stops consuming partition p once the batch in hand is applied
// and acknowledged (its checkpoint saved), and returns then.
func (r *Runner) Revoke(p int) {
	r.switching.RLock()
	defer r.switching.RUnlock()
	r.revoke(p)
}

func (r *Runner) revoke(p int) {
	r.mu.Lock()
	w := r.workers[p]
	delete(r.workers, p)
	r.mu.Unlock()
	if w == nil {
		return
	}
	close(w.drain)
	<-w.done
	w.cancel()
}

// Switch makes the runner apply proj, a projector of the same projection
// (in another generation of its store), from now on: it drains every
// partition it consumes, then consumes them again from proj's checkpoints.
// It returns once they are consuming again.
func (r *Runner) Switch(proj projections.Projector) error {
	if proj.Name() != r.name {
		return fmt.Errorf("projector %s: cannot switch to projection %s", r.name, proj.Name())
	}
	r.switching.Lock()
	defer r.switching.Unlock()
	owned := r.Owned()
	var wg sync.WaitGroup
	for _, p := range owned {
		wg.Go(func() { r.revoke(p) })
	}
	wg.Wait()
	r.proj.Store(&current{proj})
	for _, p := range owned {
		r.last[p].Store(0)
		r.assign(p)
	}
	return nil
}

// Owned lists the partitions being consumed, in order.
func (r *Runner) Owned() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, 0, len(r.workers))
	for p := range r.workers {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Stop ends all work at once (a batch being applied is abandoned, to be
// applied again from the checkpoint by whoever consumes the partition
// next), waits for it, and closes the subscriber. It is idempotent.
func (r *Runner) Stop() {
	r.mu.Lock()
	if r.cancel != nil {
		r.cancel()
	}
	workers := r.workers
	r.workers = map[int]*worker{}
	r.mu.Unlock()
	for _, w := range workers {
		<-w.done
		w.cancel()
	}
	_ = r.sub.Close()
}

func (r *Runner) consume(ctx context.Context, p int, ch <-chan *message.Message, drain <-chan struct{}) {
	msgs := make([]*message.Message, 0, r.cfg.MaxBatch)
	linger := time.NewTimer(time.Hour)
	defer linger.Stop()
	var last uint64 // highest position handled by this worker
	var blocked map[string]bool
	if r.cfg.DeadLetters != nil {
		if blocked = r.loadBlocked(ctx, p, drain); blocked == nil {
			return
		}
	}
	for {
		msgs = msgs[:0]
		select {
		case m, ok := <-ch:
			if !ok {
				return
			}
			msgs = append(msgs, m)
		case <-drain:
			return
		case <-ctx.Done():
			return
		}
		if !r.gather(ctx, ch, drain, &msgs, linger) {
			return
		}
		b := &batch{p: p, blocked: blocked, drain: drain, info: Batch{Projection: r.name, Partition: p, Messages: msgs}}
		started := time.Now()
		bctx := r.cfg.Observer.StartBatch(ctx, &b.info)
		ok := r.decode(bctx, b, msgs, &last) && r.applyBatch(bctx, b)
		if ok {
			for _, m := range msgs {
				m.Ack()
			}
			r.applied.Add(uint64(len(b.events) - b.markers))
			if n := len(b.events); n > 0 {
				r.last[p].Store(b.events[n-1].Position)
			}
		}
		r.cfg.Observer.EndBatch(bctx, &b.info, ok, time.Since(started))
		if !ok {
			return
		}
	}
}

// gather adds to msgs, which holds a batch's first message, what else has
// arrived, then what arrives within the linger, up to MaxBatch; it stops
// waiting when the partition is drained or ch closes. It returns false
// when ctx ends (ch closes because it ended, too): the batch is dropped,
// and redelivered to the partition's next consumer.
func (r *Runner) gather(ctx context.Context, ch <-chan *message.Message, drain <-chan struct{}, msgs *[]*message.Message, linger *time.Timer) bool {
	var wait <-chan time.Time
	defer linger.Stop()
	for len(*msgs) < r.cfg.MaxBatch {
		select {
		case m, ok := <-ch:
			if !ok {
				return ctx.Err() == nil
			}
			*msgs = append(*msgs, m)
			continue
		default:
		}
		if r.cfg.Linger < 0 {
			return true
		}
		if wait == nil {
			linger.Reset(r.cfg.Linger)
			wait = linger.C
		}
		select {
		case m, ok := <-ch:
			if !ok {
				return ctx.Err() == nil
			}
			*msgs = append(*msgs, m)
		case <-wait:
			return true
		case <-drain:
			return true
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// apply applies evs, events of b, retrying with backoff. It returns true
// once they are applied; false with the error after limit attempts that
// failed with a permanent error (limit 0: no limit); false with a nil
// error when ctx ends, or when the partition is being drained and an
// attempt failed.
func (r *Runner) apply(ctx context.Context, b *batch, evs []projections.Event, limit int) (bool, error) {
	backoff := r.cfg.MinBackoff
	permanent := 0
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, r.cfg.ApplyTimeout)
		err := r.projector().Apply(actx, b.p, evs)
		cancel()
		if err == nil {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, nil
		}
		r.cfg.Observer.ApplyFailed(ctx, &b.info, evs, err)
		if events.IsPermanent(err) {
			if permanent++; limit > 0 && permanent >= limit {
				return false, err
			}
		}
		r.log.WarnContext(ctx, "apply failed, retrying", append(eventAttrs(evs), "partition", b.p, "events", len(evs), "attempt", attempt, "backoff", backoff, "err", err)...)
		if !r.pause(ctx, b.drain, &backoff) {
			if ctx.Err() == nil {
				r.log.WarnContext(ctx, "partition drained with its batch unapplied; its next owner applies it", "partition", b.p, "events", len(evs))
			}
			return false, nil
		}
	}
}
