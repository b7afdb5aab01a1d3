package platform_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/fx"

	"github.com/evflow/evflow/infra/platform"
	"github.com/evflow/evflow/infra/telemetry"
	"github.com/evflow/evflow/infra/testenv"
)

// startObserved starts a replica of s that logs JSON at debug level to
// logs and records its spans in exp, synchronously.
func (s *stand) startObserved(t testing.TB, logs *testenv.Buffer, exp *tracetest.InMemoryExporter) *replica {
	t.Helper()
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	var r *platform.Replica
	app := fx.New(platform.Options(s.cfg, logger), fx.Replace(telemetry.NewTracing(tp)), fx.Populate(&r),
		fx.StartTimeout(time.Minute), fx.StopTimeout(30*time.Second))
	if err := app.Err(); err != nil {
		t.Fatalf("new replica: %v", err)
	}
	return run(t, app, r)
}

// metrics scrapes the replica's GET /metrics.
func (r *replica) metrics() (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d", resp.StatusCode)
	}
	var p expfmt.TextParser
	return p.TextToMetricFamilies(resp.Body)
}

// series are the samples of a metric family whose labels include match,
// as label string → value (a histogram's: its count; sum: its sum).
type series map[string]float64

// sample returns the value of each series of name matching labels; for
// a histogram the count, or the sum when sum is set.
func sample(mfs map[string]*dto.MetricFamily, name string, labels map[string]string, sum bool) (series, error) {
	mf, ok := mfs[name]
	if !ok {
		return nil, fmt.Errorf("no metric %s", name)
	}
	out := series{}
	for _, m := range mf.GetMetric() {
		key, matches := "", 0
		for _, l := range m.GetLabel() {
			key += l.GetName() + "=" + l.GetValue() + ","
			if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
				matches++
			}
		}
		if matches != len(labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			out[key] = m.GetCounter().GetValue()
		case m.Gauge != nil:
			out[key] = m.GetGauge().GetValue()
		case m.Histogram != nil && sum:
			out[key] = m.GetHistogram().GetSampleSum()
		case m.Histogram != nil:
			out[key] = float64(m.GetHistogram().GetSampleCount())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no series of %s with %v", name, labels)
	}
	return out, nil
}

// total is the sum of the series' values.
func (s series) total() float64 {
	var n float64
	for _, v := range s {
		n += v
	}
	return n
}
