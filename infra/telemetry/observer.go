package telemetry

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/projections"
)

// MaxLinks bounds the links of an apply span (see [Observer]); the
// tracing SDK's own default limit is 128.
const MaxLinks = 64

// ObserverConfig configures [NewObserver].
type ObserverConfig struct {
	// Projection is the projection observed. Required.
	Projection string
	// System is the messaging.system of the spans (nats, kafka).
	System string
	// Metrics are updated by every batch. Required.
	Metrics *Metrics
	// Tracing; default [NoTracing].
	Tracing *Tracing
}

// Observer is the projector.Observer of one projection: it counts failed
// applies, records the size and apply time of every batch applied, and,
// when tracing is on, puts each batch in a consumer span "apply
// <projection>", under which the batch is decoded, parked and applied.
//
// The span's place in the traces of its events: the events' messages
// carry the trace context of their publish span. When every traced event
// of the batch carries the same one (a command's single event; launches
// published together), the apply span is its child, in the same trace.
// When they carry several (a batch gathers events of many requests), a
// span cannot have several parents: the apply span starts a trace of its
// own and links to each distinct publish span, up to [MaxLinks] (the
// number of traced events is in the attribute evflow.traced_events).
type Observer struct {
	projection, system string
	tracing            *Tracing
	failures           prometheus.Counter
	size, took         prometheus.Observer
}

var _ projector.Observer = (*Observer)(nil)

// NewObserver returns the observer cfg describes.
func NewObserver(cfg ObserverConfig) *Observer {
	if cfg.Tracing == nil {
		cfg.Tracing = NoTracing()
	}
	return &Observer{
		projection: cfg.Projection, system: cfg.System, tracing: cfg.Tracing,
		failures: cfg.Metrics.applyFailures.WithLabelValues(cfg.Projection),
		size:     cfg.Metrics.batchSize.WithLabelValues(cfg.Projection),
		took:     cfg.Metrics.applyDuration.WithLabelValues(cfg.Projection),
	}
}

// StartBatch implements projector.Observer: it starts the batch's span
// when tracing is on.
func (o *Observer) StartBatch(ctx context.Context, b *projector.Batch) context.Context {
	if !o.tracing.enabled {
		return ctx
	}
	var links []trace.Link
	traced := 0
	for _, m := range b.Messages {
		sc := o.tracing.extract(ctx, m.Metadata)
		if !sc.IsValid() {
			continue
		}
		traced++
		if !linked(links, sc) && len(links) < MaxLinks {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", o.system),
		attribute.String("messaging.operation.type", "process"),
		attribute.Int("messaging.batch.message_count", len(b.Messages)),
		attribute.String("evflow.projection", o.projection),
		attribute.Int("evflow.partition", b.Partition),
		attribute.Int("evflow.traced_events", traced),
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
	if len(links) == 1 {
		ctx = trace.ContextWithRemoteSpanContext(ctx, links[0].SpanContext)
	} else if len(links) > 1 {
		opts = append(opts, trace.WithNewRoot(), trace.WithLinks(links...))
	}
	ctx, _ = o.tracing.tracer.Start(ctx, "apply "+o.projection, opts...)
	return ctx
}

// linked reports whether links has sc already.
func linked(links []trace.Link, sc trace.SpanContext) bool {
	for _, l := range links {
		if l.SpanContext.TraceID() == sc.TraceID() && l.SpanContext.SpanID() == sc.SpanID() {
			return true
		}
	}
	return false
}

// ApplyFailed implements projector.Observer.
func (o *Observer) ApplyFailed(ctx context.Context, _ *projector.Batch, evs []projections.Event, err error) {
	o.failures.Inc()
	if o.tracing.enabled {
		trace.SpanFromContext(ctx).RecordError(err, trace.WithAttributes(attribute.Int("evflow.events", len(evs))))
	}
}

// Parked implements projector.Observer.
func (o *Observer) Parked(ctx context.Context, _ *projector.Batch, l bus.Letter) {
	if o.tracing.enabled {
		trace.SpanFromContext(ctx).AddEvent("parked as a dead letter", trace.WithAttributes(
			attribute.String("messaging.message.id", l.MessageID),
			attribute.String("evflow.position", strconv.FormatUint(l.Position, 10)),
			attribute.String("evflow.reason", l.Reason)))
	}
}

// EndBatch implements projector.Observer: it records an applied batch's
// size and time, and ends the span.
func (o *Observer) EndBatch(ctx context.Context, b *projector.Batch, applied bool, took time.Duration) {
	if applied {
		o.size.Observe(float64(b.Events))
		o.took.Observe(took.Seconds())
	}
	if !o.tracing.enabled {
		return
	}
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.Int("evflow.events", b.Events), attribute.Int("evflow.parked", b.Parked))
	if !applied {
		span.SetStatus(codes.Error, "abandoned: the partition was drained or the runner stopped; its next owner applies the batch")
	}
	span.End()
}
