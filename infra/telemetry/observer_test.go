package telemetry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/telemetry"
)

// published returns n messages carrying the trace context of a new
// publish span, and that span's context.
func published(t *testing.T, n int) ([]*message.Message, trace.SpanContext) {
	t.Helper()
	ctx, span := startSpan(t, context.Background())
	defer span.End()
	var msgs []*message.Message
	for range n {
		m := message.NewMessage("e", nil)
		propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(m.Metadata))
		msgs = append(msgs, m)
	}
	return msgs, span.SpanContext()
}

// metric is the first series of the metric name in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// sampleCount is the number of observations of the histogram name.
func sampleCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	return metric(t, reg, name).GetHistogram().GetSampleCount()
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return metric(t, reg, name).GetCounter().GetValue()
}

func TestApplySpanIsTheChildOfOnePublishAndLinksToMany(t *testing.T) {
	tr, exp := newTracing(t)
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	o := telemetry.NewObserver(telemetry.ObserverConfig{Projection: "apps", System: "nats", Metrics: m, Tracing: tr})

	// One publish (and an untraced message): the apply is its child.
	one, pub := published(t, 2)
	b := &projector.Batch{Projection: "apps", Partition: 3, Messages: append(one, message.NewMessage("untraced", nil)), Events: 3}
	ctx := o.StartBatch(context.Background(), b)
	o.ApplyFailed(ctx, b, nil, errors.New("store down"))
	o.Parked(ctx, b, bus.Letter{MessageID: "e", Reason: "why"})
	o.EndBatch(ctx, b, true, 20*time.Millisecond)
	// Two publishes: the apply starts a trace and links to both.
	a, pa := published(t, 1)
	c, pc := published(t, 1)
	b2 := &projector.Batch{Projection: "apps", Partition: 3, Messages: append(a, c...), Events: 2}
	o.EndBatch(o.StartBatch(context.Background(), b2), b2, false, time.Millisecond)

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	child, linked := spans[0], spans[1]
	if child.Name != "apply apps" || child.SpanKind != trace.SpanKindConsumer || child.Parent.SpanID() != pub.SpanID() ||
		child.SpanContext.TraceID() != pub.TraceID() || len(child.Links) != 0 {
		t.Errorf("first apply span %q kind %v parent %v links %d: want a consumer child of the publish %v", child.Name, child.SpanKind, child.Parent, len(child.Links), pub)
	}
	if len(child.Events) != 2 || child.Events[0].Name != "exception" || child.Events[1].Name != "parked as a dead letter" {
		t.Errorf("first apply span events %v: want the failure and the parked event", child.Events)
	}
	if linked.Parent.IsValid() || len(linked.Links) != 2 || linked.Links[0].SpanContext.SpanID() != pa.SpanID() || linked.Links[1].SpanContext.SpanID() != pc.SpanID() {
		t.Errorf("second apply span parent %v links %v: want a new root linking both publishes", linked.Parent, linked.Links)
	}
	if linked.Status.Code != codes.Error {
		t.Errorf("abandoned batch's span status %v, want an error", linked.Status)
	}
	// Only the applied batch is measured.
	if n := sampleCount(t, reg, "evflow_batch_size_events"); n != 1 {
		t.Errorf("batch sizes observed %d times, want 1", n)
	}
	if n := sampleCount(t, reg, "evflow_batch_apply_duration_seconds"); n != 1 {
		t.Errorf("apply durations observed %d times, want 1", n)
	}
	if v := counterValue(t, reg, "evflow_apply_failures_total"); v != 1 {
		t.Errorf("apply failures %v, want 1", v)
	}
}

func TestObserverWithoutTracingOnlyCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	o := telemetry.NewObserver(telemetry.ObserverConfig{Projection: "redis", Metrics: m})
	msgs, _ := published(t, 1)
	b := &projector.Batch{Projection: "redis", Messages: msgs, Events: 1}
	ctx := context.Background()
	if got := o.StartBatch(ctx, b); got != ctx {
		t.Fatal("StartBatch made a new context with tracing off")
	}
	o.EndBatch(ctx, b, true, time.Millisecond)
	if n := sampleCount(t, reg, "evflow_batch_size_events"); n != 1 {
		t.Errorf("batch sizes observed %d times, want 1", n)
	}
	allocs := testing.AllocsPerRun(100, func() {
		o.EndBatch(o.StartBatch(ctx, b), b, true, time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("a batch costs %v allocations with tracing off, want 0", allocs)
	}
}
