// Package bustest is the contract every evflow bus backend passes: the same
// tests run against JetStream and Kafka, on real brokers (an embedded
// nats-server, kfake).
package bustest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
)

// Backend is one backend under test, over a fresh, empty topic.
type Backend struct {
	Topic      string
	Partitions int
	Publisher  message.Publisher
	// NewSubscriber returns a subscriber starting after startAfter's
	// position, with window unacknowledged messages.
	NewSubscriber func(startAfter func(ctx context.Context, p int) (uint64, error), window int) (message.Subscriber, error)
	// Head returns the position of an aggregate's last event (handlers.Heads).
	Head func(ctx context.Context, aggregateType, id string) (uint64, error)
	Log  bus.Log
}

// Open starts a backend with partitions partitions for one test.
type Open func(t *testing.T, partitions int) Backend

// Run runs the contract against open's backends.
func Run(t *testing.T, open Open) {
	t.Run("PublishReportsPositionsInPartitionOrder", func(t *testing.T) { publishOrder(t, open(t, 4)) })
	t.Run("RetriedPublishIsStoredOnce", func(t *testing.T) { retried(t, open(t, 4)) })
	t.Run("BatchPositionsAreTheirEvents", func(t *testing.T) { batchPositions(t, open(t, 4)) })
	t.Run("ExpectedPositionDetectsConflict", func(t *testing.T) { conflict(t, open(t, 4)) })
	t.Run("ConcurrentConditionalAppendsOneWins", func(t *testing.T) { concurrent(t, open(t, 4)) })
	t.Run("SubscribeDeliversFromStartAfterInOrder", func(t *testing.T) { subscribe(t, open(t, 4)) })
	t.Run("NackRedeliversFromTheNackedMessage", func(t *testing.T) { nack(t, open(t, 4)) })
	t.Run("StartsAtFindsTheFirstEventAtATime", func(t *testing.T) { startsAt(t, open(t, 4)) })
	t.Run("MetadataReachesSubscribers", func(t *testing.T) { metadata(t, open(t, 4)) })
	t.Run("SameIDOfAnotherAggregateOrTenantIsNotADuplicate", func(t *testing.T) { idPerAggregate(t, open(t, 4)) })
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Launch is an app.launched event of app.
func Launch(id, app string, n int) events.Envelope {
	return events.Envelope{
		ID: id, Type: events.TypeAppLaunched, SchemaVersion: 1, Tenant: "org1",
		AggregateType: events.AggregateUsage, AggregateID: app, OccurredAt: time.Now().UTC(),
		Data: []byte(fmt.Sprintf(`{"app_id":%q,"device_id":"d%d","org":"org1","at":"2026-11-23T10:00:00Z"}`, app, n)),
	}
}

// AppEvent is an app.created event of app.
func AppEvent(id, app string) events.Envelope {
	return events.Envelope{
		ID: id, Type: events.TypeAppCreated, SchemaVersion: 1, Tenant: "org1",
		AggregateType: events.AggregateApp, AggregateID: app, OccurredAt: time.Now().UTC(),
		Data: []byte(`{"name":"x"}`),
	}
}

func appender(b Backend) *bus.Appender { return bus.NewAppender(b.Publisher, b.Topic, b.Partitions) }

func mustAppend(t *testing.T, b Backend, expected *uint64, envs ...events.Envelope) []uint64 {
	t.Helper()
	pos, err := appender(b).Append(ctxOf(t), expected, envs...)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return pos
}

func publishOrder(t *testing.T, b Backend) {
	ctx := ctxOf(t)
	last := make([]uint64, b.Partitions)
	for i := range 40 {
		app := fmt.Sprintf("app%d", i%7)
		pos := mustAppend(t, b, nil, Launch(fmt.Sprintf("e%d", i), app, i))[0]
		p := events.Partition(app, b.Partitions)
		if pos <= last[p] {
			t.Fatalf("event %d on partition %d got position %d after %d", i, p, pos, last[p])
		}
		last[p] = pos
	}
	heads, err := b.Log.Heads(ctx)
	if err != nil {
		t.Fatalf("heads: %v", err)
	}
	for p := range last {
		if heads[p] != last[p] {
			t.Errorf("partition %d: head %d, last published %d", p, heads[p], last[p])
		}
	}
	if n, err := b.Log.Messages(ctx); err != nil || n != 40 {
		t.Errorf("messages = %d, %v; want 40", n, err)
	}
}

func retried(t *testing.T, b Backend) {
	ctx := ctxOf(t)
	e := Launch("same-id", "app1", 1)
	first := mustAppend(t, b, nil, e)[0]
	again := mustAppend(t, b, nil, e)[0]
	if again != first {
		t.Errorf("retried publish got position %d, first %d", again, first)
	}
	// The same event twice in one batch, with a new one: stored once each.
	pos := mustAppend(t, b, nil, e, Launch("other-id", "app1", 2), e)
	if pos[0] != first || pos[2] != first || pos[1] <= first {
		t.Errorf("batch with a repeated event got positions %v, first %d", pos, first)
	}
	if n, err := b.Log.Messages(ctx); err != nil || n != 2 {
		t.Errorf("messages = %d, %v; want 2 (the retries deduplicated)", n, err)
	}
	// Publish marks the copies it found stored, and only those.
	var msgs []*message.Message
	for _, env := range []events.Envelope{e, Launch("third-id", "app1", 3)} {
		m, err := bus.ToMessage(env, b.Partitions)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := b.Publisher.Publish(b.Topic, msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if d0, d1 := msgs[0].Metadata.Get(bus.MetaDuplicate), msgs[1].Metadata.Get(bus.MetaDuplicate); d0 != "1" || d1 != "" {
		t.Errorf("%s on the retry %q, on a new event %q; want \"1\" and none", bus.MetaDuplicate, d0, d1)
	}
}

// idPerAggregate: deduplication is per tenant and aggregate, so a producer
// reusing another's event id gets its own event stored and cannot have the
// other's dropped; subscribers see the plain id.
func idPerAggregate(t *testing.T, b Backend) {
	ctx := ctxOf(t)
	a := mustAppend(t, b, nil, Launch("shared-id", "app1", 1))[0]
	other := mustAppend(t, b, nil, Launch("shared-id", "app2", 2))[0]
	again := mustAppend(t, b, nil, Launch("shared-id", "app1", 1))[0]
	if again != a {
		t.Errorf("retry on app1 got position %d, first %d", again, a)
	}
	// Another tenant on the same aggregate: the launches of an app its
	// owner and a grantee report.
	grantee := Launch("shared-id", "app1", 4)
	grantee.Tenant = "org2"
	if pos := mustAppend(t, b, nil, grantee)[0]; pos == a {
		t.Errorf("org2's event on app1 got org1's position %d: dropped as its duplicate", pos)
	}
	if n, err := b.Log.Messages(ctx); err != nil || n != 3 {
		t.Fatalf("messages = %d, %v; want 3: the events of app2 and of org2 stored beside app1's", n, err)
	}
	p := events.Partition("app2", b.Partitions)
	if m := receive(t, b, p, other-1, 1)[0]; m.UUID != "shared-id" || m.Metadata.Get(bus.MetaAggregateID) != "app2" {
		t.Errorf("delivered %s of %s, want shared-id of app2", m.UUID, m.Metadata.Get(bus.MetaAggregateID))
	}
}

// batchPositions: one append across every partition reports, for each
// event, the position its own event was stored at.
func batchPositions(t *testing.T, b Backend) {
	var envs []events.Envelope
	for i := range 40 {
		envs = append(envs, Launch(fmt.Sprintf("b%d", i), fmt.Sprintf("app%d", i%9), i))
	}
	pos := mustAppend(t, b, nil, envs...)
	want := map[uint64]string{} // position → event id, per partition
	for i, e := range envs {
		want[uint64(events.Partition(e.AggregateID, b.Partitions))<<48|pos[i]] = e.ID
	}
	for p := range b.Partitions {
		n, err := b.Log.Pending(ctxOf(t), p, 0)
		if err != nil || n == 0 {
			continue
		}
		for _, m := range receive(t, b, p, 0, int(n)) {
			rec, err := bus.FromMessage(m)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if id := want[uint64(p)<<48|rec.Position]; id != rec.ID {
				t.Fatalf("partition %d position %d holds %s, the append reported %q there", p, rec.Position, rec.ID, id)
			}
		}
	}
}

func conflict(t *testing.T, b Backend) {
	ctx := ctxOf(t)
	zero := uint64(0)
	p1 := mustAppend(t, b, &zero, AppEvent("c1", "appX"))[0]
	if _, err := appender(b).Append(ctx, &zero, AppEvent("c2", "appX")); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("append on a stale position: got %v, want ErrConflict", err)
	}
	p2 := mustAppend(t, b, &p1, AppEvent("c3", "appX"))[0]
	if head, err := b.Head(ctx, events.AggregateApp, "appX"); err != nil || head != p2 {
		t.Fatalf("head = %d, %v; want %d", head, err, p2)
	}
	if head, err := b.Head(ctx, events.AggregateApp, "nobody"); err != nil || head != 0 {
		t.Fatalf("head of an aggregate without events = %d, %v; want 0", head, err)
	}
	if n, err := b.Log.Messages(ctx); err != nil || n != 2 {
		t.Errorf("messages = %d, %v; want 2 (the conflicting append stored nothing)", n, err)
	}
}

func concurrent(t *testing.T, b Backend) {
	ctx := ctxOf(t)
	zero := uint64(0)
	base := mustAppend(t, b, &zero, AppEvent("base", "appC"))[0]
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			exp := base
			_, err := appender(b).Append(ctx, &exp, AppEvent(fmt.Sprintf("race%d", i), "appC"))
			errs <- err
		}()
	}
	won := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			won++
		case !errors.Is(err, events.ErrConflict):
			t.Errorf("append: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d appends on the same position succeeded, want exactly 1", won, n)
	}
	if m, err := b.Log.Messages(ctx); err != nil || m != 2 {
		t.Errorf("messages = %d, %v; want 2", m, err)
	}
}

// receive subscribes to partition p after startAfter and returns the first
// n messages, acking each.
func receive(t *testing.T, b Backend, p int, after uint64, n int) []*message.Message {
	t.Helper()
	sub, err := b.NewSubscriber(func(context.Context, int) (uint64, error) { return after, nil }, 1)
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch, err := sub.Subscribe(ctx, bus.PartitionTopic(b.Topic, p))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	var out []*message.Message
	for len(out) < n {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d of %d messages", len(out), n)
			}
			m.Ack()
			out = append(out, m)
		case <-ctx.Done():
			t.Fatalf("got %d of %d messages", len(out), n)
		}
	}
	return out
}

func subscribe(t *testing.T, b Backend) {
	var pos []uint64
	for i := range 10 {
		pos = append(pos, mustAppend(t, b, nil, Launch(fmt.Sprintf("s%d", i), "appS", i))[0])
	}
	p := events.Partition("appS", b.Partitions)
	got := receive(t, b, p, pos[2], 7)
	for i, m := range got {
		rec, err := bus.FromMessage(m)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if rec.Position != pos[i+3] || rec.ID != fmt.Sprintf("s%d", i+3) || rec.Partition != p {
			t.Fatalf("message %d: position %d id %s partition %d; want %d s%d %d", i, rec.Position, rec.ID, rec.Partition, pos[i+3], i+3, p)
		}
		if m.Metadata.Get(bus.MetaAggregateID) != "appS" || m.Metadata.Get(bus.MetaAggregateType) != events.AggregateUsage {
			t.Fatalf("message %d: aggregate %s/%s", i, m.Metadata.Get(bus.MetaAggregateType), m.Metadata.Get(bus.MetaAggregateID))
		}
	}
}

func nack(t *testing.T, b Backend) {
	var pos []uint64
	for i := range 6 {
		pos = append(pos, mustAppend(t, b, nil, Launch(fmt.Sprintf("n%d", i), "appN", i))[0])
	}
	sub, err := b.NewSubscriber(func(context.Context, int) (uint64, error) { return 0, nil }, 4)
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch, err := sub.Subscribe(ctx, bus.PartitionTopic(b.Topic, events.Partition("appN", b.Partitions)))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	next := func() uint64 {
		select {
		case m := <-ch:
			p, _ := bus.Position(m)
			if p == pos[1] {
				m.Nack()
				return p
			}
			m.Ack()
			return p
		case <-ctx.Done():
			t.Fatal("no message")
			return 0
		}
	}
	if got := next(); got != pos[0] {
		t.Fatalf("first = %d, want %d", got, pos[0])
	}
	if got := next(); got != pos[1] { // nacked
		t.Fatalf("second = %d, want %d", got, pos[1])
	}
	// Withdrawn messages may arrive before the redelivery: drop them.
	for {
		select {
		case m := <-ch:
			p, _ := bus.Position(m)
			if p != pos[1] {
				continue
			}
			m.Ack()
			for i := 2; i < 6; i++ {
				if got := next(); got != pos[i] {
					t.Fatalf("after redelivery got %d, want %d", got, pos[i])
				}
			}
			return
		case <-ctx.Done():
			t.Fatal("nacked message never redelivered")
		}
	}
}

func startsAt(t *testing.T, b Backend) {
	ctx := ctxOf(t)
	for i := range 5 {
		mustAppend(t, b, nil, Launch(fmt.Sprintf("old%d", i), "appT", i))
	}
	time.Sleep(50 * time.Millisecond)
	at := time.Now()
	time.Sleep(50 * time.Millisecond)
	var newer []uint64
	for i := range 3 {
		newer = append(newer, mustAppend(t, b, nil, Launch(fmt.Sprintf("new%d", i), "appT", i))[0])
	}
	starts, err := b.Log.StartsAt(ctx, at)
	if err != nil {
		t.Fatalf("starts at: %v", err)
	}
	p := events.Partition("appT", b.Partitions)
	got := receive(t, b, p, starts[p], 3)
	for i, m := range got {
		if pos, _ := bus.Position(m); pos != newer[i] {
			t.Fatalf("message %d after %s: position %d, want %d", i, at, pos, newer[i])
		}
	}
	if n, err := b.Log.Pending(ctx, p, newer[0]); err != nil || n != 2 {
		t.Fatalf("pending after %d = %d, %v; want 2", newer[0], n, err)
	}
}
