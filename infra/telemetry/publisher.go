package telemetry

import (
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
)

// PublisherConfig configures [NewPublisher].
type PublisherConfig struct {
	// Bus is the bus label of the metrics: jetstream or kafka. Required.
	Bus string
	// System is the messaging.system of the spans (nats, kafka); default Bus.
	System string
	// Metrics are updated by every publish. Required.
	Metrics *Metrics
	// Tracing; default [NoTracing].
	Tracing *Tracing
}

// Publisher decorates a Watermill publisher of evflow events (messages
// made by bus.ToMessage) with metrics and, when tracing is on, a producer
// span per Publish call whose W3C trace context it writes into every
// message's metadata (traceparent, tracestate), which the buses carry to
// the projections (bus.Carried). The span's parent is the span in the
// first message's context, the HTTP request's.
type Publisher struct {
	next    message.Publisher
	tracing *Tracing
	system  string
	kinds   [2]publishMetrics // KindCommand, KindLaunch
}

// publishMetrics are the metrics of one bus and kind, resolved once: no
// label lookup on the hot path.
type publishMetrics struct {
	kind               string
	published          prometheus.Counter
	duplicates         prometheus.Counter
	conflicts, errored prometheus.Counter
	took               prometheus.Observer
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns next decorated as cfg says.
func NewPublisher(next message.Publisher, cfg PublisherConfig) *Publisher {
	if cfg.Tracing == nil {
		cfg.Tracing = NoTracing()
	}
	if cfg.System == "" {
		cfg.System = cfg.Bus
	}
	p := &Publisher{next: next, tracing: cfg.Tracing, system: cfg.System}
	for i, kind := range []string{KindCommand, KindLaunch} {
		m := cfg.Metrics
		p.kinds[i] = publishMetrics{
			kind:       kind,
			published:  m.published.WithLabelValues(cfg.Bus, kind),
			duplicates: m.duplicates.WithLabelValues(cfg.Bus, kind),
			conflicts:  m.publishFailures.WithLabelValues(cfg.Bus, kind, ReasonConflict),
			errored:    m.publishFailures.WithLabelValues(cfg.Bus, kind, ReasonError),
			took:       m.publishDuration.WithLabelValues(cfg.Bus, kind),
		}
	}
	return p
}

// Publish publishes msgs with next, counting and timing it; see [Publisher].
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return p.next.Publish(topic)
	}
	m := &p.kinds[1]
	if msgs[0].Metadata.Get(bus.MetaExpected) != "" {
		m = &p.kinds[0]
	}
	var span trace.Span
	if p.tracing.enabled {
		span = p.startSpan(topic, m.kind, msgs)
	}
	start := time.Now()
	err := p.next.Publish(topic, msgs...)
	switch {
	case err == nil:
		m.took.Observe(time.Since(start).Seconds())
		dups := 0
		for _, msg := range msgs {
			if msg.Metadata.Get(bus.MetaDuplicate) != "" {
				dups++
			}
		}
		m.published.Add(float64(len(msgs) - dups))
		if dups > 0 {
			m.duplicates.Add(float64(dups))
		}
	case errors.Is(err, events.ErrConflict):
		m.conflicts.Inc()
	default:
		m.errored.Inc()
	}
	if span != nil {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "publish failed")
		}
		span.End()
	}
	return err
}

// startSpan starts the producer span of a publish and writes its trace
// context into every message's metadata.
func (p *Publisher) startSpan(topic, kind string, msgs []*message.Message) trace.Span {
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", p.system),
		attribute.String("messaging.operation.type", "publish"),
		attribute.String("messaging.destination.name", topic),
		attribute.Int("messaging.batch.message_count", len(msgs)),
		attribute.String("evflow.publish.kind", kind),
	}
	if len(msgs) == 1 {
		attrs = append(attrs, attribute.String("messaging.message.id", msgs[0].UUID))
	}
	ctx, span := p.tracing.tracer.Start(msgs[0].Context(), "publish "+topic,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	for _, m := range msgs {
		p.tracing.inject(ctx, m.Metadata)
	}
	return span
}

// Close closes next.
func (p *Publisher) Close() error { return p.next.Close() }
