package platform

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.uber.org/fx"

	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/telemetry"
)

// telemetryOptions are the fx options of a replica's observability: its
// metrics (beside the registry of newMetrics), its tracing (--otel-*), the
// publishes counted and traced, the state collected at scrape time.
// Tests replace the *telemetry.Tracing (fx.Replace) to trace into an
// in-memory exporter.
func telemetryOptions() fx.Option {
	return fx.Options(
		fx.Provide(newTracing, newTelemetryMetrics),
		fx.Decorate(instrumentBus),
		fx.Invoke(registerReplicaMetrics),
	)
}

// tracingShutdownTimeout bounds the export of the last spans at stop.
const tracingShutdownTimeout = 5 * time.Second

// newTracing starts the tracing --otel-* describe (none by default); the
// spans still buffered are exported when the replica stops, after its
// runners. When tracing is on, the SDK's errors (a collector that cannot
// be reached) are logged as warnings instead of printed by otel's default
// handler, which would break JSON logs: the one piece of otel's global
// state evflow sets, here in the wiring.
func newTracing(lc fx.Lifecycle, cfg config.Config, log *slog.Logger) (*telemetry.Tracing, error) {
	t, err := telemetry.StartTracing(context.Background(), telemetry.TracingConfig{
		Exporter: cfg.OTel.Exporter, Endpoint: cfg.OTel.Endpoint, SampleRatio: cfg.OTel.SampleRatio,
		Instance: cfg.ReplicaID(),
	})
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(func(ctx context.Context) error {
		// A collector that is down must not hold up the exit for the
		// exporter's whole retry budget.
		ctx, cancel := context.WithTimeout(ctx, tracingShutdownTimeout)
		defer cancel()
		return t.Shutdown(ctx)
	}))
	if t.Enabled() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("tracing: spans not exported", "err", err)
		}))
	}
	return t, nil
}

func newTelemetryMetrics(reg *prometheus.Registry) (*telemetry.Metrics, error) {
	return telemetry.NewMetrics(reg)
}

// instrumentBus counts and traces the replica's publishes: its Publisher,
// and the Appender commands and launches go through, are wrapped in a
// telemetry.Publisher, which also writes the trace context into the
// events' metadata.
func instrumentBus(b *Bus, cfg config.Config, m *telemetry.Metrics, t *telemetry.Tracing) *Bus {
	c := *b
	c.Publisher = telemetry.NewPublisher(b.Publisher, telemetry.PublisherConfig{Bus: b.Kind, System: messagingSystem(b.Kind), Metrics: m, Tracing: t})
	c.Appender = bus.NewAppender(c.Publisher, b.Topic, cfg.Partitions)
	return &c
}

// observer is the projector.Observer of the runner of projection.
func observer(projection string, b *Bus, m *telemetry.Metrics, t *telemetry.Tracing) projector.Observer {
	return telemetry.NewObserver(telemetry.ObserverConfig{Projection: projection, System: messagingSystem(b.Kind), Metrics: m, Tracing: t})
}

// observeHTTP wraps the API with request ids, server spans and request
// logs (see telemetry.HTTPHandler).
func observeHTTP(h http.Handler, t *telemetry.Tracing, log *slog.Logger) http.Handler {
	return telemetry.HTTPHandler(h, telemetry.HTTPConfig{Tracing: t, Logger: log})
}

// messagingSystem is the OpenTelemetry messaging.system of a bus kind.
func messagingSystem(kind string) string {
	if kind == config.BusJetStream {
		return "nats"
	}
	return kind
}
