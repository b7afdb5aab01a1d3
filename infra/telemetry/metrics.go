package telemetry

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of publish, the kind label of the publish metrics.
const (
	// KindCommand is a conditional append: an event decided by a command
	// against the aggregate's current state.
	KindCommand = "command"
	// KindLaunch is an unconditional append: ingested usage events.
	KindLaunch = "launch"
)

// Reasons a publish failed, the reason label of
// evflow_publish_failures_total.
const (
	// ReasonConflict: the aggregate moved on since the decision (the
	// command is decided again).
	ReasonConflict = "conflict"
	// ReasonError: the broker did not store the events.
	ReasonError = "error"
)

// Metrics are the metrics instrumented code updates as it goes (the
// publishers' and the projection runners'). Those read from state when
// scraped (applied, lag, owners, takeovers) are collected elsewhere. Every
// label value is bounded: buses, kinds, reasons, projections.
type Metrics struct {
	published       *prometheus.CounterVec   // bus, kind
	duplicates      *prometheus.CounterVec   // bus, kind
	publishFailures *prometheus.CounterVec   // bus, kind, reason
	publishDuration *prometheus.HistogramVec // bus, kind
	applyFailures   *prometheus.CounterVec   // projection
	batchSize       *prometheus.HistogramVec // projection
	applyDuration   *prometheus.HistogramVec // projection
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evflow_events_published_total",
			Help: "Events the broker stored for this replica, by bus and kind of publish (command: conditional append; launch: ingestion); retries it had stored already are evflow_events_duplicate_total.",
		}, []string{"bus", "kind"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evflow_events_duplicate_total",
			Help: "Events published again that the broker had stored already (a retry of another publish call, deduplicated by tenant, aggregate and event id), by bus and kind.",
		}, []string{"bus", "kind"}),
		publishFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evflow_publish_failures_total",
			Help: "Publish calls that stored nothing or not everything, by bus, kind and reason (conflict: the aggregate moved on; error: the broker failed).",
		}, []string{"bus", "kind", "reason"}),
		publishDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "evflow_publish_duration_seconds",
			Help:    "Time from a publish call to the broker's acknowledgement of all its events, by bus and kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5ms to 16s
		}, []string{"bus", "kind"}),
		applyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evflow_apply_failures_total",
			Help: "Attempts to apply events to a projection that failed (each is retried, or parked at last), by projection.",
		}, []string{"projection"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "evflow_batch_size_events",
			Help:    "Events in each batch a projection applied, by projection.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 to 8192
		}, []string{"projection"}),
		applyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "evflow_batch_apply_duration_seconds",
			Help:    "Time to decode, apply and acknowledge a batch, retries included, by projection.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"projection"}),
	}
	for _, c := range []prometheus.Collector{m.published, m.duplicates, m.publishFailures, m.publishDuration, m.applyFailures, m.batchSize, m.applyDuration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("telemetry: register metrics: %w", err)
		}
	}
	return m, nil
}
