package projector_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

// recorder is an observer that writes down what it is told.
type recorder struct {
	mu                    sync.Mutex
	open                  map[*projector.Batch]bool
	batches, abandoned    int
	events, parkedInBatch int
	failures              int
	parked                []string
	errs                  []string
}

func (r *recorder) StartBatch(ctx context.Context, b *projector.Batch) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open[b] {
		r.errs = append(r.errs, "StartBatch twice")
	}
	r.open[b] = true
	return ctx
}

func (r *recorder) ApplyFailed(_ context.Context, b *projector.Batch, evs []projections.Event, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open[b] || len(evs) == 0 || err == nil {
		r.errs = append(r.errs, fmt.Sprintf("ApplyFailed on batch open %v with %d events, err %v", r.open[b], len(evs), err))
	}
	r.failures++
}

func (r *recorder) Parked(_ context.Context, b *projector.Batch, l bus.Letter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open[b] || l.Projection != b.Projection {
		r.errs = append(r.errs, "Parked outside its batch")
	}
	r.parked = append(r.parked, l.MessageID)
}

func (r *recorder) EndBatch(_ context.Context, b *projector.Batch, applied bool, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open[b] || took <= 0 {
		r.errs = append(r.errs, fmt.Sprintf("EndBatch of batch open %v, took %s", r.open[b], took))
	}
	delete(r.open, b)
	if !applied {
		r.abandoned++
		return
	}
	r.batches++
	r.events += b.Events
	r.parkedInBatch += b.Parked
}

// The observer hears of every batch, each failed attempt and each parked
// event; the failure and dead-letter logs name the event and the
// correlation id of the command that caused it.
func TestObserverAndLogsFollowEveryBatch(t *testing.T) {
	ctx := testenv.Context(t)
	d := newDrill(t, "l2")
	d.proj.broken.Store(true)
	for i, app := range []string{"a", "b", "b", "a"} { // l2 fails for good, l3 waits behind it
		id := fmt.Sprintf("l%d", i+1)
		data := fmt.Sprintf(`{"app_id":%q,"version":"1.0.0","device_id":"dev","org":"org","at":"%sT10:00:00Z"}`, app, day)
		env := events.Envelope{ID: id, Type: events.TypeAppLaunched, SchemaVersion: 1, Tenant: "org", CorrelationID: "corr-" + id,
			AggregateType: events.AggregateUsage, AggregateID: app, OccurredAt: time.Now(), Data: []byte(data)}
		if _, err := d.app.Append(ctx, nil, env); err != nil {
			t.Fatal(err)
		}
	}
	logs := &testenv.Buffer{}
	rec := &recorder{open: map[*projector.Batch]bool{}}
	r, err := projector.New(projector.Config{Topic: evjs.DefaultTopic, Partitions: 1, MaxAttempts: 3,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, DeadLetters: d.dl,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Observer: rec},
		d.proj, func(start projector.StartAfter, window int) (message.Subscriber, error) {
			return evjs.NewSubscriber(d.js, evjs.SubscriberConfig{StartAfter: start, Window: window})
		})
	if err != nil {
		t.Fatal(err)
	}
	r.Start(ctx)
	defer r.Stop()
	r.Assign(0)
	testenv.WaitFor(t, 20*time.Second, func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.events != 4 {
			return fmt.Errorf("observer saw %d events applied in %d batches, want 4", rec.events, rec.batches)
		}
		return nil
	})
	rec.mu.Lock()
	if len(rec.errs) > 0 || rec.abandoned != 0 || len(rec.open) != 0 {
		t.Errorf("observer calls out of order: %v; %d abandoned, %d open", rec.errs, rec.abandoned, len(rec.open))
	}
	if !slices.Equal(rec.parked, []string{"l2", "l3"}) || rec.parkedInBatch != 2 {
		t.Errorf("observer saw %v parked (%d in batches), want l2 and l3", rec.parked, rec.parkedInBatch)
	}
	// The batch fails once, then l2 alone MaxAttempts times, unless l2
	// came in a batch of its own.
	if rec.failures < 3 {
		t.Errorf("observer saw %d failed attempts, want at least MaxAttempts 3", rec.failures)
	}
	rec.mu.Unlock()

	want := map[string]string{"event parked as a dead letter/l2": "corr-l2", "event parked as a dead letter/l3": "corr-l3", "apply failed, retrying/l2": "corr-l2"}
	for _, l := range logs.JSONLines(t) {
		key := fmt.Sprintf("%v/%v", l["msg"], l["event_id"])
		if corr, ok := want[key]; ok {
			if l["correlation_id"] != corr {
				t.Errorf("log %q: correlation_id %v, want %s", key, l["correlation_id"], corr)
			}
			delete(want, key)
		}
	}
	if len(want) > 0 {
		t.Errorf("no log lines for %v", want)
	}
}
