package platform

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evflow/evflow/infra/config"
)

// scrapeTimeout bounds the reads of one scrape of [replicaCollector]: the
// heads, then each projection's checkpoints (statusTimeout each).
const scrapeTimeout = 10 * time.Second

// replicaCollector collects, when /metrics is scraped, what the replica's
// state already knows: the runners' counters, the partitions each runner
// consumes, the lag of every partition, and the takeovers. Nothing on the
// hot path updates it.
type replicaCollector struct {
	log        *slog.Logger
	b          *Bus
	runners    runnerSet
	owner      Ownership
	partitions []string // label values, "0" to "P-1"

	applied, parked, skipped, owned, lag, takeovers *prometheus.Desc

	// lags caches the lag of each projection for lagTTL: a scrape reads
	// the heads and every partition's checkpoint, which scrapers (open to
	// anyone who reaches /metrics) must not multiply.
	mu     sync.Mutex
	lagsAt time.Time
	lags   map[string][]uint64 // by projection; absent: unknown
}

// lagTTL is how long a scrape's lags are served again.
const lagTTL = time.Second

// registerReplicaMetrics registers the replica's [replicaCollector] on reg,
// and shows every projection's rebuilds counter from the start, at 0.
func registerReplicaMetrics(reg *prometheus.Registry, cfg config.Config, log *slog.Logger, b *Bus, g *generations, runners runnerSet, owner Ownership) error {
	for _, r := range runners {
		g.rebuildsTotal.WithLabelValues(r.Name())
	}
	c := &replicaCollector{log: log, b: b, runners: runners, owner: owner}
	for p := range cfg.Partitions {
		c.partitions = append(c.partitions, strconv.Itoa(p))
	}
	proj, part := []string{"projection"}, []string{"projection", "partition"}
	c.applied = prometheus.NewDesc("evflow_events_applied_total",
		"Events this replica applied to a projection since it started (idempotent no-ops included), by projection.", proj, nil)
	c.parked = prometheus.NewDesc("evflow_events_dead_lettered_total",
		"Events this replica parked as dead letters since it started, by projection.", proj, nil)
	c.skipped = prometheus.NewDesc("evflow_events_skipped_total",
		"Undecodable events skipped (only without a dead-letter store), by projection.", proj, nil)
	c.owned = prometheus.NewDesc("evflow_partition_owned",
		"1 when this replica consumes the partition for the projection, else 0.", part, nil)
	c.lag = prometheus.NewDesc("evflow_partition_lag",
		"Stream positions between a partition's head and the projection's stored checkpoint, read at scrape time by every replica (take the max over replicas). "+
			"On JetStream positions are stream-wide, so this bounds the events still to apply; on Kafka it is their count. "+
			"Missing while the projection's store cannot be read.", part, nil)
	c.takeovers = prometheus.NewDesc("evflow_partition_takeovers_total",
		"Partitions this replica took over from another replica (one that died, or on Kafka also one that left) since it started.", nil, nil)
	return reg.Register(c)
}

// Describe implements prometheus.Collector.
func (c *replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.applied, c.parked, c.skipped, c.owned, c.lag, c.takeovers} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A store or bus that does not
// answer leaves the lag out rather than failing the scrape.
func (c *replicaCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.takeovers, prometheus.CounterValue, float64(c.owner.Takeovers()))
	for _, r := range c.runners {
		name := r.Name()
		ch <- prometheus.MustNewConstMetric(c.applied, prometheus.CounterValue, float64(r.Applied()), name)
		ch <- prometheus.MustNewConstMetric(c.parked, prometheus.CounterValue, float64(r.Parked()), name)
		ch <- prometheus.MustNewConstMetric(c.skipped, prometheus.CounterValue, float64(r.Skipped()), name)
		owned := make([]bool, len(c.partitions))
		for _, p := range r.Owned() {
			if p < len(owned) {
				owned[p] = true
			}
		}
		for p, label := range c.partitions {
			v := 0.0
			if owned[p] {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.owned, prometheus.GaugeValue, v, name, label)
		}
	}
	lags := c.lagsNow()
	for _, r := range c.runners {
		for p, lag := range lags[r.Name()] {
			if p < len(c.partitions) {
				ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(lag), r.Name(), c.partitions[p])
			}
		}
	}
}

// lagsNow returns the projections' lags, read at most once per lagTTL
// after the last read ended (a failed read included): concurrent scrapes
// wait for one read and share it, however slow the stores are.
func (c *replicaCollector) lagsNow() map[string][]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.lagsAt) < lagTTL {
		return c.lags
	}
	defer func() { c.lagsAt = time.Now() }()
	c.lags = map[string][]uint64{}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	heads, err := c.b.Log.Heads(ctx)
	if err != nil {
		c.log.Debug("metrics: no lag: heads unavailable", "err", err)
		return c.lags
	}
	for _, r := range c.runners {
		ps := projectionStatus(ctx, r, heads)
		if ps.Error != "" {
			c.log.Debug("metrics: no lag", "projection", r.Name(), "err", ps.Error)
			continue
		}
		c.lags[r.Name()] = ps.Lag
	}
	return c.lags
}
