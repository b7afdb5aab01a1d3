package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/bus/bustest"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/testenv"
)

const partitions = 4

func setup(t *testing.T) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	return setupN(t, partitions)
}

// setupN starts a nats-server and creates a stream of parts partitions.
func setupN(t *testing.T, parts int) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	n := testenv.StartNATS(t)
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	s, err := evjs.EnsureStream(testenv.Context(t), js, evjs.StreamConfig{Partitions: parts})
	if err != nil {
		t.Fatalf("ensure stream: %v", err)
	}
	return js, s
}

var launch, appEvent = bustest.Launch, bustest.AppEvent

func streamMsgs(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

func TestPublishDeduplicatesRetriesByEventID(t *testing.T) {
	js, s := setup(t)
	a := bus.NewAppender(evjs.NewPublisher(js, evjs.PublisherConfig{}), evjs.DefaultTopic, partitions)
	ctx := testenv.Context(t)
	first, err := a.Append(ctx, nil, launch("e1", "app1", 1), launch("e2", "app1", 2))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	again, err := a.Append(ctx, nil, launch("e1", "app1", 1), launch("e2", "app1", 2))
	if err != nil {
		t.Fatalf("append retry: %v", err)
	}
	if first[0] != again[0] || first[1] != again[1] {
		t.Fatalf("retry got positions %v, first publish %v: want the same", again, first)
	}
	if got := streamMsgs(t, s); got != 2 {
		t.Fatalf("stream holds %d messages, want 2", got)
	}
}

func TestPublishExpectedPositionDetectsConflict(t *testing.T) {
	js, s := setup(t)
	a := bus.NewAppender(evjs.NewPublisher(js, evjs.PublisherConfig{}), evjs.DefaultTopic, partitions)
	ctx := testenv.Context(t)
	zero := uint64(0)
	pos, err := a.Append(ctx, &zero, appEvent("c1", "app1"))
	if err != nil {
		t.Fatalf("first append: %v", err)
	}
	// A launch on the same app is another subject: it does not move the app's position.
	if _, err := a.Append(ctx, nil, launch("l1", "app1", 1)); err != nil {
		t.Fatalf("launch: %v", err)
	}
	if _, err := a.Append(ctx, &zero, appEvent("c2", "app1")); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("append expecting 0 after an event: err = %v, want ErrConflict", err)
	}
	if _, err := a.Append(ctx, &pos[0], appEvent("c3", "app1")); err != nil {
		t.Fatalf("append expecting %d: %v", pos[0], err)
	}
	if got := streamMsgs(t, s); got != 3 {
		t.Fatalf("stream holds %d messages, want 3 (the conflicting one not stored)", got)
	}
}

func TestEnsureStreamRefusesAnotherPartitionCount(t *testing.T) {
	js, _ := setup(t)
	_, err := evjs.EnsureStream(testenv.Context(t), js, evjs.StreamConfig{Partitions: partitions + 1})
	if err == nil {
		t.Fatal("EnsureStream with another partition count succeeded, want an error")
	}
}

func TestSubscribeDeliversPartitionInOrderFromStart(t *testing.T) {
	js, _ := setup(t)
	a := bus.NewAppender(evjs.NewPublisher(js, evjs.PublisherConfig{}), evjs.DefaultTopic, partitions)
	ctx := testenv.Context(t)
	var envs []events.Envelope
	for i := range 200 {
		envs = append(envs, launch(fmt.Sprintf("e%d", i), fmt.Sprintf("app%d", i%7), i))
	}
	positions, err := a.Append(ctx, nil, envs...)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	p := events.Partition("app3", partitions)
	var want []uint64
	for i, e := range envs {
		if events.Partition(e.AggregateID, partitions) == p && positions[i] > positions[10] {
			want = append(want, positions[i])
		}
	}
	sub, err := evjs.NewSubscriber(js, evjs.SubscriberConfig{
		StartAfter: func(context.Context, int) (uint64, error) { return positions[10], nil },
		Window:     8,
	})
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, bus.PartitionTopic(evjs.DefaultTopic, p))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	got := receive(t, ch, len(want), func(m *message.Message) { m.Ack() })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered positions %v, want %v", got, want)
	}
}

func TestNackRedeliversFromTheNackedMessage(t *testing.T) {
	js, _ := setup(t)
	a := bus.NewAppender(evjs.NewPublisher(js, evjs.PublisherConfig{}), evjs.DefaultTopic, partitions)
	ctx := testenv.Context(t)
	var envs []events.Envelope
	for i := range 10 {
		envs = append(envs, launch(fmt.Sprintf("e%d", i), "app1", i))
	}
	positions, err := a.Append(ctx, nil, envs...)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	sub, _ := evjs.NewSubscriber(js, evjs.SubscriberConfig{
		StartAfter: func(context.Context, int) (uint64, error) { return 0, nil },
		Window:     4,
	})
	defer sub.Close()
	ch, _ := sub.Subscribe(ctx, bus.PartitionTopic(evjs.DefaultTopic, events.Partition("app1", partitions)))
	nacked, waiting := false, false
	var got []uint64
	for len(got) < len(positions) {
		select {
		case m := <-ch:
			pos, _ := bus.Position(m)
			if waiting && pos != positions[3] {
				continue // withdrawn: delivered before the nack was seen
			}
			waiting = false
			if pos == positions[3] && !nacked {
				nacked, waiting = true, true
				m.Nack()
				continue
			}
			got = append(got, pos)
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out; got %v", got)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(positions) {
		t.Fatalf("delivered %v after a nack of %d, want %v", got, positions[3], positions)
	}
}

func receive(t *testing.T, ch <-chan *message.Message, n int, each func(*message.Message)) []uint64 {
	t.Helper()
	var got []uint64
	for len(got) < n {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d of %d", len(got), n)
			}
			pos, err := bus.Position(m)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, pos)
			each(m)
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out after %d of %d messages", len(got), n)
		}
	}
	return got
}
