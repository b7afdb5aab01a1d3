package telemetry_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/evflow/evflow/infra/telemetry"
	"github.com/evflow/evflow/infra/testenv"
)

// api is a small API: the route pattern names the spans.
func api(t *testing.T, tr *telemetry.Tracing, log *slog.Logger) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/things/{id}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /metrics", func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(telemetry.HTTPHandler(mux, telemetry.HTTPConfig{Tracing: tr, Logger: log}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestHTTPHandlerGivesRequestsIDsSpansAndLogLines(t *testing.T) {
	tr, exp := newTracing(t)
	var buf testenv.Buffer
	log := telemetry.Logger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	srv := api(t, tr, log)

	// A caller's request id is kept, and its trace continued.
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	resp := do(t, "POST", srv.URL+"/v1/things/42", map[string]string{
		"X-Request-ID": "req-42", "X-Correlation-ID": "corr-42", "traceparent": parent})
	if got := resp.Header.Get("X-Request-ID"); got != "req-42" || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("answer %d with X-Request-ID %q, want 202 and req-42", resp.StatusCode, got)
	}
	// Without one, or with one unfit for logs, the request gets a new id.
	var generated []string
	for _, id := range []string{"", "bad id\twith spaces"} {
		resp := do(t, "POST", srv.URL+"/v1/things/43", map[string]string{"X-Request-ID": id})
		got := resp.Header.Get("X-Request-ID")
		if len(got) != 36 {
			t.Fatalf("request id %q answered with %q, want a new UUID", id, got)
		}
		generated = append(generated, got)
	}
	do(t, "GET", srv.URL+"/metrics", nil)

	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3 (scrapes are not traced)", len(spans))
	}
	s := spans[0]
	if s.Name != "POST /v1/things/{id}" || s.SpanKind != trace.SpanKindServer {
		t.Errorf("span %q of kind %v, want the route pattern, server", s.Name, s.SpanKind)
	}
	if s.Parent.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" || !s.Parent.IsRemote() {
		t.Errorf("span parent %v, want the caller's traceparent", s.Parent)
	}
	attrs := map[string]string{}
	for _, a := range s.Attributes {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["http.route"] != "POST /v1/things/{id}" || attrs["http.response.status_code"] != "202" || attrs["request_id"] != "req-42" {
		t.Errorf("span attributes %v", attrs)
	}

	var lines []map[string]any
	for _, l := range buf.JSONLines(t) {
		if l["msg"] == "http request" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 4 {
		t.Fatalf("%d request log lines, want 4", len(lines))
	}
	first := lines[0]
	if first["request_id"] != "req-42" || first["correlation_id"] != "corr-42" || first["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		first["span_id"] != s.SpanContext.SpanID().String() || first["route"] != "POST /v1/things/{id}" || first["status"] != float64(202) {
		t.Errorf("log line %v: want the request, correlation, trace and span ids, route and status", first)
	}
	for i, id := range generated {
		if l := lines[i+1]; l["request_id"] != id || l["correlation_id"] != nil {
			t.Errorf("log line %v: want request_id %s and no correlation_id", l, id)
		}
	}
}

func TestHTTPHandlerWithoutTracingStillGivesRequestIDs(t *testing.T) {
	srv := api(t, telemetry.NoTracing(), slog.New(slog.DiscardHandler))
	resp := do(t, "POST", srv.URL+"/v1/things/1", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	if len(resp.Header.Get("X-Request-ID")) != 36 || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("answer %d with X-Request-ID %q", resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}
}
