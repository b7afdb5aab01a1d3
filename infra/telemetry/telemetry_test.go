package telemetry_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/evflow/evflow/infra/telemetry"
	"github.com/evflow/evflow/infra/testenv"
)

// newTracing returns a Tracing that records every span into the returned
// in-memory exporter, synchronously.
func newTracing(t *testing.T) (*telemetry.Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	return telemetry.NewTracing(tp), exp
}

// startSpan starts a recording span in ctx, of a provider of its own.
func startSpan(t *testing.T, ctx context.Context) (context.Context, trace.Span) {
	t.Helper()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("test").Start(ctx, "test")
}

func TestOTLPEndpointGetsThePathOfTraces(t *testing.T) {
	for in, want := range map[string]string{
		"http://collector:4318":         "http://collector:4318/v1/traces",
		"https://collector:4318/":       "https://collector:4318/v1/traces",
		"http://gateway/otel/v1/traces": "http://gateway/otel/v1/traces",
		"collector:4318":                "",
		"ftp://collector":               "",
		"http://":                       "",
	} {
		got, err := telemetry.OTLPEndpoint(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("OTLPEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestStartTracing(t *testing.T) {
	off, err := telemetry.StartTracing(t.Context(), telemetry.TracingConfig{})
	if err != nil || off.Enabled() {
		t.Fatalf("no exporter: %v, enabled %v; want tracing off", err, off != nil && off.Enabled())
	}
	if _, err := telemetry.StartTracing(t.Context(), telemetry.TracingConfig{Exporter: "jaeger"}); err == nil {
		t.Fatal("exporter jaeger accepted")
	}
	var out testenv.Buffer
	on, err := telemetry.StartTracing(t.Context(), telemetry.TracingConfig{Exporter: telemetry.ExporterStdout, SampleRatio: 1, Instance: "r1", Stdout: &out})
	if err != nil || !on.Enabled() {
		t.Fatalf("stdout exporter: %v", err)
	}
	h := telemetry.HTTPHandler(http.NotFoundHandler(), telemetry.HTTPConfig{Tracing: on, Logger: slog.New(slog.DiscardHandler)})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/x", nil))
	if err := on.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	spans := out.JSONLines(t)
	if len(spans) != 1 || spans[0]["Name"] != "HTTP GET" {
		t.Fatalf("exported %v, want the request's span", spans)
	}
	if !strings.Contains(fmt.Sprint(spans[0]["Resource"]), "r1") {
		t.Errorf("span resource %v lacks the instance id", spans[0]["Resource"])
	}
}
