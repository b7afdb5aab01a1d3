package telemetry_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/evflow/evflow/infra/telemetry"
	"github.com/evflow/evflow/infra/testenv"
)

func TestLogHandlerAddsTheContextIDs(t *testing.T) {
	var buf testenv.Buffer
	log := telemetry.Logger(slog.New(slog.NewJSONHandler(&buf, nil)))
	if telemetry.Logger(log) != log {
		t.Fatal("Logger wrapped its own logger again")
	}
	ctx := telemetry.WithCorrelationID(telemetry.WithRequestID(context.Background(), "req-1"), "corr-1")
	ctx, span := startSpan(t, ctx)
	log.InfoContext(ctx, "with ids", "k", "v")
	log.With("component", "x").WarnContext(ctx, "with attrs")
	log.Info("without a context")
	span.End()

	lines := buf.JSONLines(t)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	sc := span.SpanContext()
	for _, l := range lines[:2] {
		want := map[string]any{"request_id": "req-1", "correlation_id": "corr-1", "trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("line %v: %s = %v, want %v", l["msg"], k, l[k], v)
			}
		}
	}
	if lines[0]["k"] != "v" || lines[1]["component"] != "x" {
		t.Errorf("the records' own attributes went missing: %v", lines[:2])
	}
	for _, k := range []string{"request_id", "correlation_id", "trace_id", "span_id"} {
		if _, ok := lines[2][k]; ok {
			t.Errorf("a record without a context got %s", k)
		}
	}
}
