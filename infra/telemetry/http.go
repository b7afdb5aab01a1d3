package telemetry

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HTTP headers of [HTTPHandler].
const (
	// HeaderRequestID carries a request's id, in and out.
	HeaderRequestID = "X-Request-ID"
	// HeaderCorrelationID carries a caller's correlation id in.
	HeaderCorrelationID = "X-Correlation-ID"
)

// HTTPConfig configures [HTTPHandler].
type HTTPConfig struct {
	// Tracing; default [NoTracing].
	Tracing *Tracing
	// Logger logs every request at debug level; default slog.Default().
	Logger *slog.Logger
}

// HTTPHandler wraps an API handler (an http.ServeMux, whose route pattern
// names the spans) with what makes its requests followable:
//
//   - a request id: the request's X-Request-ID when it has a usable one
//     (1-128 visible ASCII characters), else a new UUID; it is answered in
//     X-Request-ID and put in the request's context (request_id in logs);
//   - a correlation id, when the caller sends X-Correlation-ID (same
//     rules), in the context (correlation_id in logs);
//   - when tracing is on, a server span "METHOD /route/{pattern}", child of
//     the caller's W3C trace context (traceparent) if it sent one; GET
//     /metrics, /healthz and /readyz are not traced;
//   - a debug log line per request: method, route, status, duration.
func HTTPHandler(next http.Handler, cfg HTTPConfig) http.Handler {
	if cfg.Tracing == nil {
		cfg.Tracing = NoTracing()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &httpHandler{next: next, cfg: cfg}
}

type httpHandler struct {
	next http.Handler
	cfg  HTTPConfig
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get(HeaderRequestID)
	if !usableID(id) {
		id = uuid.NewString()
	}
	w.Header().Set(HeaderRequestID, id)
	ctx := WithRequestID(r.Context(), id)
	if cid := r.Header.Get(HeaderCorrelationID); usableID(cid) {
		ctx = WithCorrelationID(ctx, cid)
	}
	var span trace.Span
	if h.cfg.Tracing.enabled && traced(r.URL.Path) {
		ctx = h.cfg.Tracing.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		ctx, span = h.cfg.Tracing.tracer.Start(ctx, "HTTP "+r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("url.path", r.URL.Path),
				attribute.String(LogRequestID, id)))
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	r = r.WithContext(ctx)
	h.next.ServeHTTP(sw, r)
	// The mux set the pattern it routed r by on r (not on the caller's).
	route := r.Pattern
	if span != nil {
		if route != "" {
			span.SetName(route) // "POST /v1/commands"
			span.SetAttributes(attribute.String("http.route", route))
		}
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
		span.End()
	}
	if h.cfg.Logger.Enabled(ctx, slog.LevelDebug) {
		h.cfg.Logger.DebugContext(ctx, "http request", "method", r.Method, "route", route, "status", sw.status, "took", time.Since(start))
	}
}

// traced reports whether requests to path get a span: not the scrapes
// and probes, which would drown the traces.
func traced(path string) bool {
	return path != "/metrics" && path != "/healthz" && path != "/readyz"
}

// usableID reports whether a caller's id can be taken as is: 1-128
// visible ASCII characters, so it is safe in headers and logs.
func usableID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer
// (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
