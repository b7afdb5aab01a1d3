package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys added by [LogHandler].
const (
	LogRequestID     = "request_id"
	LogCorrelationID = "correlation_id"
	LogTraceID       = "trace_id"
	LogSpanID        = "span_id"
)

// ctxKey is the type of this package's context keys.
type ctxKey int

const (
	requestIDKey ctxKey = iota
	correlationIDKey
)

// WithRequestID returns ctx carrying the id of the request being served.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestIDFromContext returns the request id in ctx, "" when none.
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithCorrelationID returns ctx carrying a correlation id: the id that
// ties together everything one original request caused.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationIDKey, id)
}

// CorrelationIDFromContext returns the correlation id in ctx, "" when none.
func CorrelationIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(correlationIDKey).(string)
	return id
}

// LogHandler is a slog.Handler that adds, to every record logged with a
// context (the …Context methods, or Log), what the context knows:
// request_id, correlation_id, and trace_id and span_id when a span is in
// it. Records without those, or logged without a context, are passed on
// unchanged. Under a group (WithGroup) the fields land in that group.
type LogHandler struct{ next slog.Handler }

var _ slog.Handler = LogHandler{}

// NewLogHandler returns next wrapped in a [LogHandler]; next itself when
// it is one already.
func NewLogHandler(next slog.Handler) slog.Handler {
	if h, ok := next.(LogHandler); ok {
		return h
	}
	return LogHandler{next: next}
}

// Logger returns log with its handler wrapped by [NewLogHandler].
func Logger(log *slog.Logger) *slog.Logger {
	if _, ok := log.Handler().(LogHandler); ok {
		return log
	}
	return slog.New(NewLogHandler(log.Handler()))
}

// Enabled implements slog.Handler.
func (h LogHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.next.Handle(ctx, r)
	}
	if id := RequestIDFromContext(ctx); id != "" {
		r.AddAttrs(slog.String(LogRequestID, id))
	}
	if id := CorrelationIDFromContext(ctx); id != "" {
		r.AddAttrs(slog.String(LogCorrelationID, id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String(LogTraceID, sc.TraceID().String()), slog.String(LogSpanID, sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{next: h.next.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h LogHandler) WithGroup(name string) slog.Handler {
	return LogHandler{next: h.next.WithGroup(name)}
}
