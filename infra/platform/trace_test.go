package platform_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/evflow/evflow/infra/testenv"
)

// post sends body to path with a request id and returns the answer's
// status and X-Request-ID.
func (r *replica) post(path, requestID string, body any) (int, string) {
	r.t.Helper()
	js, err := json.Marshal(body)
	if err != nil {
		r.t.Fatal(err)
	}
	req, err := http.NewRequest("POST", r.base+path, bytes.NewReader(js))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("X-Request-ID", requestID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Request-ID")
}

// flow is the spans of one request: its server span, the publish span
// under it, and the apply span of each projection in its trace (a child of
// the publish, or a span linked to it).
type flow struct {
	server, publish tracetest.SpanStub
	applies         map[string]tracetest.SpanStub
}

// traceOf finds the flow of the request with id requestID on route in
// spans; it fails until every projection has applied it.
func traceOf(spans tracetest.SpanStubs, route, requestID string) (flow, error) {
	f := flow{applies: map[string]tracetest.SpanStub{}}
	for _, s := range spans {
		for _, a := range s.Attributes {
			if s.Name == route && s.SpanKind == trace.SpanKindServer && a.Key == "request_id" && a.Value.AsString() == requestID {
				f.server = s
			}
		}
	}
	if !f.server.SpanContext.IsValid() {
		return f, fmt.Errorf("no server span %q of request %s", route, requestID)
	}
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindProducer && s.Parent.SpanID() == f.server.SpanContext.SpanID() {
			f.publish = s
		}
	}
	if !f.publish.SpanContext.IsValid() {
		return f, fmt.Errorf("no publish span under %s", route)
	}
	pub := f.publish.SpanContext
	for _, s := range spans {
		if s.SpanKind != trace.SpanKindConsumer {
			continue
		}
		under := s.Parent.SpanID() == pub.SpanID() && s.SpanContext.TraceID() == pub.TraceID()
		for _, l := range s.Links {
			under = under || l.SpanContext.SpanID() == pub.SpanID()
		}
		for _, a := range s.Attributes {
			if under && a.Key == "evflow.projection" {
				f.applies[a.Value.AsString()] = s
			}
		}
	}
	if len(f.applies) != len(projectionNames) {
		return f, fmt.Errorf("apply spans of %d projections under the publish of %s, want %d", len(f.applies), route, len(projectionNames))
	}
	return f, nil
}

// A command's trace goes from its HTTP request through the publish of its
// event to each projection's apply, carried in the event's metadata; so
// does a batch of launches'. Log lines carry the request and trace ids.
func TestTraceSpansHTTPToApply(t *testing.T) { onEachBus(t, testTraceSpansHTTPToApply) }

func testTraceSpansHTTPToApply(t *testing.T, s *stand) {
	exp := tracetest.NewInMemoryExporter()
	logs := &testenv.Buffer{}
	r := s.startObserved(t, logs, exp)
	r.caughtUp() // the runners are consuming
	if code, id := r.post("/v1/commands", "req-create", cmd("app.create", "weather", "name", "Weather")); code != http.StatusOK || id != "req-create" {
		t.Fatalf("command: %d, request id %q", code, id)
	}
	var command flow
	testenv.WaitFor(t, 20*time.Second, func() (err error) {
		command, err = traceOf(exp.GetSpans(), "POST /v1/commands", "req-create")
		return err
	})
	trace := command.server.SpanContext.TraceID()
	if command.publish.SpanContext.TraceID() != trace {
		t.Errorf("publish span in trace %s, want the request's %s", command.publish.SpanContext.TraceID(), trace)
	}
	for name, a := range command.applies {
		// One command, one event in its batch: the apply is the
		// publish's child, in the request's trace.
		if a.SpanContext.TraceID() != trace || a.Parent.SpanID() != command.publish.SpanContext.SpanID() {
			t.Errorf("apply %s: trace %s parent %s, want a child of the publish in trace %s", name, a.SpanContext.TraceID(), a.Parent.SpanID(), trace)
		}
	}
	if code, _ := r.post("/v1/launches", "req-launch", launches("weather", []string{"t1", "t2", "t3"}, []string{"d1"})); code != http.StatusAccepted {
		t.Fatalf("launches: %d", code)
	}
	testenv.WaitFor(t, 20*time.Second, func() error {
		_, err := traceOf(exp.GetSpans(), "POST /v1/launches", "req-launch")
		return err
	})

	// The request's log line carries its ids.
	found := false
	for _, l := range logs.JSONLines(t) {
		if l["msg"] == "http request" && l["request_id"] == "req-create" {
			found = true
			if l["trace_id"] != trace.String() || l["span_id"] != command.server.SpanContext.SpanID().String() || l["route"] != "POST /v1/commands" {
				t.Errorf("log line %v: want trace_id %s, the server span's id and the route", l, trace)
			}
		}
	}
	if !found {
		t.Error("no log line of request req-create")
	}
}
