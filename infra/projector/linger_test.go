package projector_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/testenv"
)

// lingering starts a runner of d's projection on partition 0 with
// maxBatch and linger, told to rec.
func (d *drill) lingering(maxBatch int, linger time.Duration, rec *recorder) *projector.Runner {
	d.t.Helper()
	r, err := projector.New(projector.Config{Topic: evjs.DefaultTopic, Partitions: 1, MaxBatch: maxBatch, Linger: linger, Observer: rec},
		d.proj, func(start projector.StartAfter, window int) (message.Subscriber, error) {
			return evjs.NewSubscriber(d.js, evjs.SubscriberConfig{StartAfter: start, Window: window})
		})
	if err != nil {
		d.t.Fatal(err)
	}
	r.Start(testenv.Context(d.t))
	d.t.Cleanup(r.Stop)
	r.Assign(0)
	return r
}

// applied waits until rec saw n events applied and returns the batches.
func (rec *recorder) applied(t *testing.T, n int) int {
	t.Helper()
	var batches int
	testenv.WaitFor(t, 20*time.Second, func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if batches = rec.batches; rec.events != n {
			return fmt.Errorf("%d events applied in %d batches, want %d events", rec.events, rec.batches, n)
		}
		return nil
	})
	return batches
}

// Events that arrive within the linger after a batch's first one are
// applied with it, in one batch.
func TestLingerGathersWhatArrivesWithinIt(t *testing.T) {
	d := newDrill(t)
	rec := &recorder{open: map[*projector.Batch]bool{}}
	d.lingering(10, 2*time.Second, rec)
	d.launch("a")
	time.Sleep(50 * time.Millisecond) // the first is delivered, the batch lingers
	d.launch("b")
	d.launch("a")
	if batches := rec.applied(t, 3); batches != 1 {
		t.Errorf("3 launches within the linger were applied in %d batches, want 1", batches)
	}
	if got := d.launches("a"); got != 2 {
		t.Errorf("app a counted %d launches, want 2", got)
	}
}

// A batch that is full does not wait out the linger.
func TestFullBatchDoesNotLinger(t *testing.T) {
	d := newDrill(t)
	for range 4 {
		d.launch("a")
	}
	rec := &recorder{open: map[*projector.Batch]bool{}}
	d.lingering(2, time.Hour, rec)
	if batches := rec.applied(t, 4); batches != 2 {
		t.Errorf("4 launches in batches of at most 2 took %d batches, want 2", batches)
	}
}

// handed is a subscriber that hands each message over unbuffered and
// tells, on got, when the runner took the first one.
type handed struct {
	message.Subscriber
	got  chan struct{}
	once sync.Once
}

func (h *handed) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	in, err := h.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for m := range in {
			select {
			case out <- m:
				h.once.Do(func() { close(h.got) })
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Revoking a partition ends the linger: the batch in hand is applied and
// Revoke returns, without waiting the linger out.
func TestRevokeEndsTheLinger(t *testing.T) {
	d := newDrill(t)
	sub := &handed{got: make(chan struct{})}
	r, err := projector.New(projector.Config{Topic: evjs.DefaultTopic, Partitions: 1, MaxBatch: 10, Linger: time.Hour},
		d.proj, func(start projector.StartAfter, window int) (message.Subscriber, error) {
			s, err := evjs.NewSubscriber(d.js, evjs.SubscriberConfig{StartAfter: start, Window: window})
			sub.Subscriber = s
			return sub, err
		})
	if err != nil {
		t.Fatal(err)
	}
	r.Start(testenv.Context(t))
	defer r.Stop()
	r.Assign(0)
	d.launch("a")
	select {
	case <-sub.got: // the batch is in hand, lingering
	case <-time.After(20 * time.Second):
		t.Fatal("the runner never took the launch")
	}
	done := make(chan struct{})
	go func() { r.Revoke(0); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Revoke waited for the linger (1h)")
	}
	if got := d.launches("a"); got != 1 {
		t.Errorf("after Revoke app a counted %d launches, want the batch in hand (1)", got)
	}
}
