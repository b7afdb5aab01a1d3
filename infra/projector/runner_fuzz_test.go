package projector_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/projections"
)

// FuzzRunnerParksMalformed delivers a partition of three events to a
// Runner, in memory and under bus.Deliver's contract: at position 1 a
// message of aggregate usage/bad whose payload is the fuzzer's bytes; at 2
// a valid launch of usage/bad; at 3 a valid launch of usage/good. The
// runner must not panic and must get through the partition (checkpoint 3)
// within seconds. If the payload is not an event the registry decodes, it
// is parked as undecodable, with its bytes, and the launch of usage/bad
// is parked behind it; otherwise both are applied. The launch of
// usage/good is applied either way. A redrive then applies what can be
// applied and keeps the rest, without panicking either.
//
// withAggregate false delivers the first message without aggregate
// metadata (a backend that could not tell it): then nothing is held
// behind it.
func FuzzRunnerParksMalformed(f *testing.F) {
	good, err := events.Marshal(launchEnvelope("l-1", "bad"))
	if err != nil {
		f.Fatal(err)
	}
	unknown := launchEnvelope("u-1", "bad")
	unknown.Type = "app.renamed"
	unknownType, _ := events.Marshal(unknown)
	for _, p := range [][]byte{
		good,
		unknownType,
		bytes.Replace(good, []byte(`"schema_version":1`), []byte(`"schema_version":2`), 1),
		bytes.Replace(good, []byte(`"device_id":"dev-l-1"`), []byte(`"device_id":""`), 1),
		bytes.Replace(good, []byte(`"app_id":"bad"`), []byte(`"app_id":"b.d"`), 1),
		good[:len(good)-1],
		nil, []byte(`null`), []byte(`{}`), []byte(`[]`), []byte("\xff\xfe"), []byte(`{"\`),
		[]byte(strings.Repeat("[", 20000)),
	} {
		f.Add(p, true)
		f.Add(p, false)
	}
	f.Fuzz(func(t *testing.T, payload []byte, withAggregate bool) {
		first := storedMsg{id: "m-1", payload: payload, aggType: events.AggregateUsage, aggID: "bad"}
		if !withAggregate {
			first.aggType, first.aggID = "", ""
		}
		msgs := []storedMsg{first, launchMsg(t, "l-2", "bad"), launchMsg(t, "l-3", "good")}
		for i := range msgs {
			msgs[i].pos = uint64(i + 1)
		}
		rec, err := bus.FromMessage(msgs[0].message())
		if err == nil {
			_, err = events.Domain().Decode(rec.Envelope)
		}
		decodable := err == nil

		proj := &memProjection{}
		box := &memLetters{}
		r, err := projector.New(projector.Config{Topic: "fuzz", Partitions: 1, MaxBatch: 2, MaxAttempts: 2,
			MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, DeadLetters: box,
			Logger: slog.New(slog.DiscardHandler)},
			proj, func(start projector.StartAfter, window int) (message.Subscriber, error) {
				return &memSubscriber{msgs: msgs, startAfter: start, window: window}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r.Start(ctx)
		r.Assign(0)
		deadline := time.Now().Add(10 * time.Second)
		for cp, _ := proj.Checkpoint(ctx, 0); cp != 3; cp, _ = proj.Checkpoint(ctx, 0) {
			if time.Now().After(deadline) {
				r.Stop()
				t.Fatalf("payload %q: partition stuck at checkpoint %d of 3 (letters %v)", payload, cp, box.positions())
			}
			time.Sleep(time.Millisecond)
		}
		r.Stop()

		applied := proj.appliedIDs()
		letters := box.all()
		var want []string // applied, in order
		var parked []uint64
		switch {
		case decodable:
			want = []string{rec.ID, "l-2", "l-3"}
		case withAggregate:
			want, parked = []string{"l-3"}, []uint64{1, 2}
		default:
			want, parked = []string{"l-2", "l-3"}, []uint64{1}
		}
		if !slices.Equal(applied, want) || !slices.Equal(box.positions(), parked) {
			t.Fatalf("payload %q (decodable %v): applied %v, parked %v; want %v, %v",
				payload, decodable, applied, box.positions(), want, parked)
		}
		for _, l := range letters {
			wantReason := "undecodable: "
			if l.Position == 2 {
				wantReason = "held behind"
			}
			if !strings.HasPrefix(l.Reason, wantReason) || l.Projection != proj.Name() || l.MessageID != msgs[l.Position-1].id ||
				!bytes.Equal(l.Payload, msgs[l.Position-1].payload) || l.Aggregate() != bus.AggregateKey(msgs[l.Position-1].aggType, msgs[l.Position-1].aggID) {
				t.Fatalf("payload %q: letter %+v", payload, l)
			}
		}
		if r.Parked() != uint64(len(parked)) || r.Applied() != uint64(len(want)) {
			t.Fatalf("payload %q: runner counts %d parked, %d applied", payload, r.Parked(), r.Applied())
		}

		res, err := r.Redrive(ctx, box)
		if err != nil || res.Redriven != 0 || res.Kept != len(letters) {
			t.Fatalf("payload %q: redrive %+v, %v; want the %d letters kept (the first is still undecodable)", payload, res, err, len(letters))
		}
	})
}

// launchEnvelope is an app.launched event of app.
func launchEnvelope(id, app string) events.Envelope {
	return events.Envelope{ID: id, Type: events.TypeAppLaunched, SchemaVersion: 1, Tenant: "org",
		AggregateType: events.AggregateUsage, AggregateID: app, OccurredAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		Data: []byte(fmt.Sprintf(`{"app_id":%q,"version":"1.0.0","device_id":"dev-%s","org":"org","at":"2026-03-01T10:00:00Z"}`, app, id))}
}

// launchMsg is the stored message of a launch of app.
func launchMsg(t *testing.T, id, app string) storedMsg {
	t.Helper()
	b, err := events.Marshal(launchEnvelope(id, app))
	if err != nil {
		t.Fatal(err)
	}
	return storedMsg{id: id, payload: b, aggType: events.AggregateUsage, aggID: app}
}

// storedMsg is a message of partition 0 as a backend stores it.
type storedMsg struct {
	id             string
	payload        []byte
	aggType, aggID string
	pos            uint64
}

// message returns a fresh delivery of m, its metadata set as a backend sets it.
func (m storedMsg) message() *message.Message {
	msg := message.NewMessage(m.id, m.payload)
	msg.Metadata.Set(bus.MetaPosition, strconv.FormatUint(m.pos, 10))
	msg.Metadata.Set(bus.MetaPartition, "0")
	if m.aggType != "" {
		msg.Metadata.Set(bus.MetaAggregateType, m.aggType)
		msg.Metadata.Set(bus.MetaAggregateID, m.aggID)
	}
	return msg
}

// memSubscriber delivers msgs, partition 0 of any topic, with bus.Deliver:
// the delivery contract of every backend (window, Nack, StartAfter).
type memSubscriber struct {
	msgs       []storedMsg
	startAfter projector.StartAfter
	window     int
	subs       bus.Subscriptions
}

func (s *memSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.subs.Start(ctx, topic, s.window, func(ctx context.Context, part int, out chan<- *message.Message) {
		bus.Deliver(ctx, bus.DeliverConfig{Partition: part, StartAfter: s.startAfter, Window: s.window,
			Backoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
			func(ctx context.Context, start uint64) (bus.Cursor, error) {
				return &memCursor{msgs: s.msgs, next: int(max(start, 1)) - 1}, nil
			}, out)
	})
}

func (s *memSubscriber) Close() error { return s.subs.Close() }

// memCursor reads msgs from index next; past the end it waits for ctx.
type memCursor struct {
	msgs []storedMsg
	next int
}

func (c *memCursor) Next(ctx context.Context) (*message.Message, error) {
	if c.next < len(c.msgs) {
		c.next++
		return c.msgs[c.next-1].message(), nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (c *memCursor) Close() {}

// memProjection records the events it applies (parked ones come with a
// nil Payload and are skipped, as projections skip them) and its
// checkpoint.
type memProjection struct {
	mu         sync.Mutex
	applied    []string
	checkpoint uint64
}

func (p *memProjection) Name() string { return "fuzz" }

func (p *memProjection) Apply(_ context.Context, _ int, batch []projections.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range batch {
		if e.Position <= p.checkpoint {
			continue
		}
		if e.Payload != nil {
			p.applied = append(p.applied, e.ID)
		}
		p.checkpoint = e.Position
	}
	return nil
}

func (p *memProjection) Checkpoint(context.Context, int) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checkpoint, nil
}

func (p *memProjection) appliedIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.applied)
}

// memLetters is a dead-letter box in memory (projector.DeadLetterBox and
// projector.LetterStore).
type memLetters struct {
	mu      sync.Mutex
	letters []bus.Letter
}

func (b *memLetters) Park(_ context.Context, l bus.Letter) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, o := range b.letters {
		if o.Projection == l.Projection && o.Partition == l.Partition && o.Position == l.Position {
			return nil
		}
	}
	l.Seq = uint64(len(b.letters) + 1)
	b.letters = append(b.letters, l)
	return nil
}

func (b *memLetters) Parked(_ context.Context, projection string, partition int, aggType, aggID string) (bool, error) {
	blocked, err := b.Blocked(context.Background(), projection, partition)
	return blocked[bus.AggregateKey(aggType, aggID)], err
}

func (b *memLetters) Blocked(_ context.Context, projection string, partition int) (map[string]bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]bool{}
	for _, l := range b.letters {
		if l.Projection == projection && l.Partition == partition && l.AggregateType != "" {
			out[l.Aggregate()] = true
		}
	}
	return out, nil
}

func (b *memLetters) List(_ context.Context, projection string) ([]bus.Letter, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []bus.Letter
	for _, l := range b.letters {
		if projection == "" || l.Projection == projection {
			out = append(out, l)
		}
	}
	return out, nil
}

func (b *memLetters) Delete(_ context.Context, seq uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, l := range b.letters {
		if l.Seq == seq {
			b.letters = slices.Delete(b.letters, i, i+1)
			return nil
		}
	}
	return errors.New("no letter " + strconv.FormatUint(seq, 10))
}

func (b *memLetters) all() []bus.Letter {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.letters)
}

// positions lists the positions of the letters, sorted.
func (b *memLetters) positions() []uint64 {
	var out []uint64
	for _, l := range b.all() {
		out = append(out, l.Position)
	}
	slices.Sort(out)
	return out
}
