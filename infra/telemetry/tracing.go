// Package telemetry is what operators see of a replica: Prometheus metrics
// of publishing and applying, OpenTelemetry traces from an HTTP command to
// the projections that apply its event, and the context fields of its
// log/slog records (request, correlation, trace and span ids).
//
// It holds no global state: metrics go to the registry they are given,
// spans to the tracer provider in a [Tracing], and the W3C trace context
// is injected and extracted with an explicit propagator, never otel's
// globals.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Exporters of [TracingConfig].
const (
	// ExporterNone traces nothing, at no cost (the default).
	ExporterNone = "none"
	// ExporterOTLP sends spans to an OpenTelemetry collector over OTLP/HTTP.
	ExporterOTLP = "otlp"
	// ExporterStdout writes spans as JSON, for a look without a collector.
	ExporterStdout = "stdout"
)

// TracerName is the instrumentation scope of evflow's spans.
const TracerName = "github.com/evflow/evflow"

// TracingConfig configures [StartTracing].
type TracingConfig struct {
	// Exporter is ExporterNone (or ""), ExporterOTLP or ExporterStdout.
	Exporter string
	// Endpoint is the OTLP/HTTP endpoint URL, such as
	// http://collector:4318 (see [OTLPEndpoint]); empty: the
	// OTEL_EXPORTER_OTLP_* environment variables, else the exporter's
	// default, https://localhost:4318/v1/traces.
	Endpoint string
	// SampleRatio is the share of traces started here that are recorded
	// (0 to 1); a trace started upstream follows the upstream decision.
	SampleRatio float64
	// ServiceName and Instance name the process in its spans' resource
	// (service.name, service.instance.id); ServiceName defaults to evflow.
	ServiceName, Instance string
	// Stdout is where ExporterStdout writes; default os.Stdout.
	Stdout io.Writer
}

// Tracing is how a component traces: a tracer, and the propagator of the
// W3C trace context. When it is off ([NoTracing], or [StartTracing] with
// ExporterNone), instrumented code skips tracing altogether, so that it
// costs nothing on the hot path: no spans, no context, no allocation.
type Tracing struct {
	tracer     trace.Tracer
	enabled    bool
	propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// NoTracing returns a Tracing that is off.
func NoTracing() *Tracing {
	return &Tracing{
		tracer:     noop.NewTracerProvider().Tracer(TracerName),
		propagator: propagation.TraceContext{},
		shutdown:   func(context.Context) error { return nil },
	}
}

// NewTracing returns a Tracing on tp, which is on. Shutting it down is the
// business of tp's owner (tests hand in an SDK provider with an in-memory
// exporter, say).
func NewTracing(tp trace.TracerProvider) *Tracing {
	return &Tracing{
		tracer: tp.Tracer(TracerName), enabled: true,
		propagator: propagation.TraceContext{},
		shutdown:   func(context.Context) error { return nil },
	}
}

// StartTracing builds the tracer provider cfg describes, with the
// exporter it names, batching spans; ExporterNone returns [NoTracing].
func StartTracing(ctx context.Context, cfg TracingConfig) (*Tracing, error) {
	var exp sdktrace.SpanExporter
	var err error
	switch cfg.Exporter {
	case "", ExporterNone:
		return NoTracing(), nil
	case ExporterOTLP:
		var opts []otlptracehttp.Option
		if cfg.Endpoint != "" {
			u, uerr := OTLPEndpoint(cfg.Endpoint)
			if uerr != nil {
				return nil, uerr
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(u))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case ExporterStdout:
		w := cfg.Stdout
		if w == nil {
			w = os.Stdout
		}
		exp, err = stdouttrace.New(stdouttrace.WithWriter(w))
	default:
		return nil, fmt.Errorf("tracing: exporter %q is not %s, %s or %s", cfg.Exporter, ExporterNone, ExporterOTLP, ExporterStdout)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %s exporter: %w", cfg.Exporter, err)
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "evflow"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if cfg.Instance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", cfg.Instance))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	t := NewTracing(tp)
	t.shutdown = tp.Shutdown
	return t, nil
}

// OTLPEndpoint checks an OTLP/HTTP endpoint URL and returns it with the
// path of traces, /v1/traces, when it has no path: as the
// OTEL_EXPORTER_OTLP_ENDPOINT variable is read (the exporter's own option
// would post to "/", and would ignore a URL it cannot parse).
func OTLPEndpoint(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("tracing: endpoint %q is not an http:// or https:// URL with a host", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// Enabled reports whether spans are recorded at all.
func (t *Tracing) Enabled() bool { return t.enabled }

// Shutdown exports the spans still buffered and stops the exporter; it
// is a no-op for a Tracing that is off or built by [NewTracing].
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// inject writes the trace context of ctx into md (a Watermill message's
// metadata, or any map of strings): traceparent, and tracestate when set.
func (t *Tracing) inject(ctx context.Context, md map[string]string) {
	t.propagator.Inject(ctx, propagation.MapCarrier(md))
}

// extract reads the span context that md carries; invalid when none.
func (t *Tracing) extract(ctx context.Context, md map[string]string) trace.SpanContext {
	if md[traceparent] == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(t.propagator.Extract(ctx, propagation.MapCarrier(md)))
}

// traceparent is the W3C header (and metadata key) of the trace context.
const traceparent = "traceparent"
