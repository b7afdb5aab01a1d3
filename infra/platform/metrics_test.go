package platform_test

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/testenv"
)

var projectionNames = []string{"apps", "daily_stats", "redis"}

func TestMetricsMoveUnderLoad(t *testing.T) { onEachBus(t, testMetricsMoveUnderLoad) }

func testMetricsMoveUnderLoad(t *testing.T, s *stand) {
	r := s.start(t)
	for _, c := range []map[string]any{
		cmd("app.create", "weather", "name", "Weather"),
		cmd("app.submit_version", "weather", "version", "1.0.0"),
		cmd("app.approve_version", "weather", "version", "1.0.0"),
		cmd("app.publish_release", "weather", "version", "1.0.0"),
	} {
		r.command(c)
	}
	var ids []string
	for i := range 50 {
		ids = append(ids, fmt.Sprintf("m%d", i))
	}
	if code := r.call("POST", "/v1/launches", launches("weather", ids[:30], []string{"d1", "d2"}), nil); code != http.StatusAccepted {
		t.Fatalf("launches: %d", code)
	}
	if code := r.call("POST", "/v1/launches", launches("news", ids[30:], []string{"d3"}), nil); code != http.StatusAccepted {
		t.Fatalf("launches: %d", code)
	}
	r.caughtUp()
	const sent = 4 + 50
	testenv.WaitFor(t, 10*time.Second, func() error { return checkMetrics(r, s.cfg, sent, 0, 0) })

	// A poison event, written straight to the bus (a launch, to the
	// publisher's metrics), is parked by every projection.
	m := message.NewMessage("poison-1", []byte("not json at all"))
	m.Metadata.Set(bus.MetaPartition, strconv.Itoa(events.Partition("weather", s.cfg.Partitions)))
	m.Metadata.Set(bus.MetaAggregateType, events.AggregateUsage)
	m.Metadata.Set(bus.MetaAggregateID, "weather")
	if err := r.r.Bus.Publisher.Publish(r.r.Bus.Topic, m); err != nil {
		t.Fatalf("publish poison: %v", err)
	}
	r.caughtUp()
	testenv.WaitFor(t, 10*time.Second, func() error { return checkMetrics(r, s.cfg, sent+1, 1, 1) })

	// A retried batch is stored once: duplicates, not published events.
	if code := r.call("POST", "/v1/launches", launches("weather", ids[:30], []string{"d1", "d2"}), nil); code != http.StatusAccepted {
		t.Fatalf("launches again: %d", code)
	}
	mfs, err := r.metrics()
	if err != nil {
		t.Fatal(err)
	}
	launch := map[string]string{"bus": s.cfg.Bus, "kind": "launch"}
	if d, err := sample(mfs, "evflow_events_duplicate_total", launch, false); err != nil || d.total() != 30 {
		t.Errorf("evflow_events_duplicate_total = %v, %v; want 30", d, err)
	}
	if p, err := sample(mfs, "evflow_events_published_total", launch, false); err != nil || p.total() != 50+1 {
		t.Errorf("evflow_events_published_total = %v, %v; want 51, the retry not counted", p, err)
	}
}

// checkMetrics checks what a replica that owns every partition reports
// once it handled every one of the events it published: 4 commands, 2
// batches of launches and poison poison events, of which parked were
// parked by every projection.
func checkMetrics(r *replica, cfg config.Config, events, poison, parked int) error {
	mfs, err := r.metrics()
	if err != nil {
		return err
	}
	var errs []error
	want := func(name string, labels map[string]string, sum bool, check func(series) error) {
		s, err := sample(mfs, name, labels, sum)
		if err == nil {
			err = check(s)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s%v: %w", name, labels, err))
		}
	}
	is := func(v float64) func(series) error {
		return func(s series) error {
			if s.total() != v {
				return fmt.Errorf("%v, want %v in all", s, v)
			}
			return nil
		}
	}
	positive := func(s series) error {
		for k, v := range s {
			if v <= 0 {
				return fmt.Errorf("%s is %v, want > 0", k, v)
			}
		}
		return nil
	}
	b := map[string]string{"bus": cfg.Bus}
	want("evflow_events_published_total", map[string]string{"bus": cfg.Bus, "kind": "command"}, false, is(4))
	want("evflow_events_published_total", map[string]string{"bus": cfg.Bus, "kind": "launch"}, false, is(float64(events-4)))
	want("evflow_publish_duration_seconds", map[string]string{"bus": cfg.Bus, "kind": "command"}, false, is(4))
	want("evflow_publish_duration_seconds", map[string]string{"bus": cfg.Bus, "kind": "launch"}, false, is(float64(2+poison)))
	want("evflow_publish_failures_total", b, false, is(0))
	want("evflow_partition_takeovers_total", nil, false, is(0))
	for _, p := range projectionNames {
		pl := map[string]string{"projection": p}
		want("evflow_events_applied_total", pl, false, is(float64(events-parked)))
		want("evflow_events_dead_lettered_total", pl, false, is(float64(parked)))
		want("evflow_events_skipped_total", pl, false, is(0))
		want("evflow_apply_failures_total", pl, false, is(0))
		want("evflow_projection_rebuilds_total", pl, false, is(0))
		// Every event went through a batch: parked ones too.
		want("evflow_batch_size_events", pl, true, is(float64(events)))
		want("evflow_batch_size_events", pl, false, positive)
		want("evflow_batch_apply_duration_seconds", pl, false, positive)
		want("evflow_partition_owned", pl, false, is(float64(cfg.Partitions)))
		for part := range cfg.Partitions {
			pp := map[string]string{"projection": p, "partition": strconv.Itoa(part)}
			want("evflow_partition_lag", pp, false, is(0))
			want("evflow_partition_owned", pp, false, is(1))
		}
	}
	if n := len(mfs["evflow_partition_lag"].GetMetric()); n != len(projectionNames)*cfg.Partitions {
		errs = append(errs, fmt.Errorf("%d lag series, want one per projection and partition", n))
	}
	return errors.Join(errs...)
}

// A replica that takes over the partitions of one that went silent
// counts them; its owner gauges then cover every partition.
func TestTakeoversAreCounted(t *testing.T) {
	n := testenv.StartNATS(t)
	link := testenv.StartProxy(t, strings.TrimPrefix(n.URL(), "nats://"))
	s := newStand(t)
	s.cfg.LeaseTTL = time.Second
	a, b := *s, *s
	a.cfg.NATSURL, a.cfg.Replica = "nats://"+link.Addr, "a"
	b.cfg.NATSURL, b.cfg.Replica = n.URL(), "b"
	ra := a.start(t)
	r := b.start(t)
	testenv.WaitFor(t, 30*time.Second, func() error {
		if oa, ob := len(ra.status().Owned), len(r.status().Owned); oa == 0 || ob == 0 || oa+ob != s.cfg.Partitions {
			return fmt.Errorf("a owns %d, b %d partitions; want them shared", oa, ob)
		}
		return nil
	})
	// a is cut off, without noticing: b takes its partitions once their
	// leases expire.
	link.Blackhole(true)
	t.Cleanup(func() { link.Blackhole(false) }) // so that a can stop
	testenv.WaitFor(t, 30*time.Second, func() error {
		mfs, err := r.metrics()
		if err != nil {
			return err
		}
		took, err := sample(mfs, "evflow_partition_takeovers_total", nil, false)
		if err != nil {
			return err
		}
		if took.total() < 1 {
			return fmt.Errorf("b counted %v takeovers", took.total())
		}
		for _, p := range projectionNames {
			owned, err := sample(mfs, "evflow_partition_owned", map[string]string{"projection": p}, false)
			if err != nil {
				return err
			}
			if owned.total() != float64(s.cfg.Partitions) {
				return fmt.Errorf("b consumes %v partitions for %s, want all %d", owned.total(), p, s.cfg.Partitions)
			}
		}
		if st := r.status(); float64(st.Takeovers) != took.total() {
			return fmt.Errorf("status counts %d takeovers, metrics %v", st.Takeovers, took.total())
		}
		return nil
	})
}
