package bustest

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
)

// metadata checks that what a publisher adds to a message's metadata (a
// W3C trace context, say) reaches its subscribers, on unconditional and
// conditional appends, while the keys the backend owns do not travel.
func metadata(t *testing.T, b Backend) {
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var msgs []*message.Message
	for i, env := range []events.Envelope{AppEvent("md-app", "appM"), Launch("md-launch", "appM", 1)} {
		m, err := bus.ToMessage(env, b.Partitions)
		if err != nil {
			t.Fatalf("to message: %v", err)
		}
		m.Metadata.Set("traceparent", traceparent)
		m.Metadata.Set("tracestate", "evflow=t"+env.ID)
		if i == 0 {
			m.Metadata.Set(bus.MetaExpected, "0") // conditional: the app has no event yet
		}
		m.SetContext(ctxOf(t))
		if err := b.Publisher.Publish(b.Topic, m); err != nil {
			t.Fatalf("publish %s: %v", env.ID, err)
		}
		msgs = append(msgs, m)
	}
	first, _ := bus.Position(msgs[0])
	got := receive(t, b, events.Partition("appM", b.Partitions), first-1, 2)
	for i, m := range got {
		if m.UUID != msgs[i].UUID {
			t.Fatalf("message %d is %s, want %s", i, m.UUID, msgs[i].UUID)
		}
		if v := m.Metadata.Get("traceparent"); v != traceparent {
			t.Errorf("%s: traceparent %q, want %q", m.UUID, v, traceparent)
		}
		if v := m.Metadata.Get("tracestate"); v != "evflow=t"+m.UUID {
			t.Errorf("%s: tracestate %q, want %q", m.UUID, v, "evflow=t"+m.UUID)
		}
		if v := m.Metadata.Get(bus.MetaExpected); v != "" {
			t.Errorf("%s: %s travelled (%q): it is the publisher's instruction", m.UUID, bus.MetaExpected, v)
		}
	}
}
