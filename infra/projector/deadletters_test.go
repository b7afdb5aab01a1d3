package projector_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/redis"
	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

const day = "2026-11-20"

// faulty is a projection with a bug: while broken, it fails for good on
// the events it names.
type faulty struct {
	projections.Projector
	broken atomic.Bool
	poison map[string]bool
}

func (f *faulty) Apply(ctx context.Context, p int, batch []projections.Event) error {
	for _, e := range batch {
		if f.broken.Load() && e.Payload != nil && f.poison[e.ID] { // nil: a parked event
			return fmt.Errorf("projection bug on %s: %w", e.ID, events.ErrMalformed)
		}
	}
	return f.Projector.Apply(ctx, p, batch)
}

type drill struct {
	t     *testing.T
	js    jetstream.JetStream
	app   *bus.Appender
	dl    *evjs.DeadLetters
	hot   *redis.Store
	proj  *faulty
	count int
}

func (d *drill) launch(app string) {
	d.t.Helper()
	d.count++
	data := fmt.Sprintf(`{"app_id":%q,"version":"1.0.0","device_id":"dev-%d","org":"org","at":"%sT10:00:00Z"}`, app, d.count, day)
	env := events.Envelope{ID: fmt.Sprintf("l%d", d.count), Type: events.TypeAppLaunched, SchemaVersion: 1, Tenant: "org",
		AggregateType: events.AggregateUsage, AggregateID: app, OccurredAt: time.Now(), Data: []byte(data)}
	if _, err := d.app.Append(testenv.Context(d.t), nil, env); err != nil {
		d.t.Fatalf("append: %v", err)
	}
}

// unknown appends an event of a type this version does not know yet.
func (d *drill) unknown(app string) {
	d.t.Helper()
	d.count++
	env := events.Envelope{ID: fmt.Sprintf("u%d", d.count), Type: "app.renamed", SchemaVersion: 1, Tenant: "org",
		AggregateType: events.AggregateUsage, AggregateID: app, OccurredAt: time.Now(), Data: []byte(`{"name":"x"}`)}
	if _, err := d.app.Append(testenv.Context(d.t), nil, env); err != nil {
		d.t.Fatalf("append: %v", err)
	}
}

func (d *drill) launches(app string) int64 {
	d.t.Helper()
	n, _, err := d.hot.Launches(testenv.Context(d.t), app, day)
	if err != nil {
		d.t.Fatal(err)
	}
	return n
}

// newDrill starts a one-partition stream on an embedded NATS, its dead
// letters, and a Redis projection that fails for good on the poison event
// ids once broken.
func newDrill(t *testing.T, poison ...string) *drill {
	t.Helper()
	ctx := testenv.Context(t)
	srv := testenv.StartNATS(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	if _, err := evjs.EnsureStream(ctx, js, evjs.StreamConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	dl, err := evjs.EnsureDeadLetters(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	rs := testenv.StartRedis(t)
	client, err := redis.Connect(ctx, redis.ClientConfig{Addr: rs.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	hot, err := redis.New(client, redis.Config{})
	if err != nil {
		t.Fatal(err)
	}
	proj := &faulty{Projector: projections.NewRedis(hot), poison: map[string]bool{}}
	for _, id := range poison {
		proj.poison[id] = true
	}
	return &drill{t: t, js: js, dl: dl, hot: hot, proj: proj,
		app: bus.NewAppender(evjs.NewPublisher(js, evjs.PublisherConfig{}), evjs.DefaultTopic, 1)}
}

func (d *drill) runner(reg *events.Registry) *projector.Runner {
	d.t.Helper()
	r, err := projector.New(projector.Config{Topic: evjs.DefaultTopic, Partitions: 1, MaxAttempts: 3,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, DeadLetters: d.dl, Registry: reg},
		d.proj, func(start projector.StartAfter, window int) (message.Subscriber, error) {
			return evjs.NewSubscriber(d.js, evjs.SubscriberConfig{StartAfter: start, Window: window})
		})
	if err != nil {
		d.t.Fatal(err)
	}
	return r
}

// A poison event and an undecodable one are parked with their reasons;
// later events of their aggregates wait behind them in the dead letters,
// other aggregates' events on the partition are applied; once the causes
// are fixed, redrive applies each once, in order.
func TestPoisonEventsAreParkedAndRedrivenOnce(t *testing.T) {
	ctx := testenv.Context(t)
	d := newDrill(t, "l3", "l9")
	dl := d.dl
	d.proj.broken.Store(true)

	d.launch("a") // l1
	d.launch("b") // l2
	d.launch("a") // l3: the projection fails on it
	d.launch("b") // l4
	d.launch("a") // l5: waits behind l3
	d.unknown("c")
	d.launch("c") // l7: waits behind u6
	d.launch("b") // l8
	// d: its first event fails in the projection, its second cannot be
	// decoded, its third waits; they are parked out of stream order (the
	// undecodable one first) and must be redriven in stream order.
	d.launch("d") // l9
	d.unknown("d")
	d.launch("d") // l11

	live := d.runner(events.Domain())
	live.Start(ctx)
	defer live.Stop()
	live.Assign(0)
	testenv.WaitFor(t, 20*time.Second, func() error {
		if got := live.Position(0); got != 11 {
			return fmt.Errorf("applied up to %d of 11", got)
		}
		return nil
	})
	if a, b, c := d.launches("a"), d.launches("b"), d.launches("c"); a != 1 || b != 3 || c != 0 {
		t.Fatalf("launches a=%d b=%d c=%d, want 1 3 0 (b not held up; a and c stopped at their poison)", a, b, c)
	}
	letters, err := dl.List(ctx, projections.RedisName)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range letters {
		got = append(got, fmt.Sprintf("%d:%s", l.Position, l.MessageID))
	}
	slices.Sort(got)
	if want := "10:u10 11:l11 3:l3 5:l5 6:u6 7:l7 9:l9"; strings.Join(got, " ") != want {
		t.Fatalf("dead letters %v, want %s", got, want)
	}
	for _, l := range letters {
		want := map[string]string{"l3": "projection bug on l3", "l5": "held behind", "u6": "undecodable", "l7": "held behind",
			"l9": "held behind", "u10": "undecodable", "l11": "held behind"}[l.MessageID]
		if !strings.Contains(l.Reason, want) || l.Projection != projections.RedisName || l.Partition != 0 {
			t.Errorf("letter %s: reason %q, projection %s, partition %d; want a reason with %q", l.MessageID, l.Reason, l.Projection, l.Partition, want)
		}
	}
	for _, l := range letters {
		if l.MessageID == "l3" && l.Attempts != 3 {
			t.Errorf("poison letter tried %d times, want MaxAttempts 3", l.Attempts)
		}
	}
	if cp, _ := d.proj.Checkpoint(ctx, 0); cp != 11 {
		t.Errorf("checkpoint %d, want 11: parked events count for it", cp)
	}

	// The bug is fixed: a's letters apply; c's still need a version that
	// knows app.renamed, so c's stay parked, in order.
	d.proj.broken.Store(false)
	res, err := live.Redrive(ctx, dl)
	if err != nil {
		t.Fatal(err)
	}
	if res.Redriven != 3 || res.Kept != 4 || len(res.Errors) != 2 {
		t.Fatalf("redrive: %+v; want a's 2 and d's first redriven, c's 2 and d's last 2 kept, with 2 errors", res)
	}
	if a, c, dd := d.launches("a"), d.launches("c"), d.launches("d"); a != 3 || c != 0 || dd != 1 {
		t.Fatalf("after redrive launches a=%d c=%d d=%d, want 3 0 1", a, c, dd)
	}
	// a has no letters left: its next event is applied live.
	d.launch("a") // l12
	testenv.WaitFor(t, 10*time.Second, func() error {
		if n := d.launches("a"); n != 4 {
			return fmt.Errorf("a has %d launches, want 4", n)
		}
		return nil
	})

	// The next version knows app.renamed (a no-op for this projection).
	reg := events.Domain()
	reg.Register("app.renamed", 1, func() any { return new(struct{ Name string }) })
	next := d.runner(reg)
	if res, err = next.Redrive(ctx, dl); err != nil || res.Redriven != 4 || res.Kept != 0 {
		t.Fatalf("redrive with the new version: %+v, %v; want c's and d's 2 redriven", res, err)
	}
	if res, err = next.Redrive(ctx, dl); err != nil || res.Redriven != 0 {
		t.Fatalf("second redrive: %+v, %v; want nothing left", res, err)
	}
	if a, b, c, dd := d.launches("a"), d.launches("b"), d.launches("c"), d.launches("d"); a != 4 || b != 3 || c != 1 || dd != 2 {
		t.Fatalf("final launches a=%d b=%d c=%d d=%d, want 4 3 1 2 (each event once, in order)", a, b, c, dd)
	}
	if n, _ := dl.Count(ctx, ""); n != 0 {
		t.Errorf("%d dead letters left, want 0", n)
	}
}
