package mongo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/projections"
)

// stream builds the events of one partition, decoded through the domain
// registry as the consumer would.
type stream struct {
	t   *testing.T
	reg *events.Registry
	pos uint64
	at  time.Time
	out []projections.Event
}

func newStream(t *testing.T) *stream {
	// A zone other than UTC: the projection must store UTC.
	at := time.Date(2026, 3, 1, 23, 0, 0, 0, time.FixedZone("UTC+2", 2*3600))
	return &stream{t: t, reg: events.Domain(), pos: 100, at: at}
}

// add appends an event of aggregate (aggType, aggID) caused by command cause.
func (s *stream) add(typ, aggType, aggID, cause string, data any) {
	s.t.Helper()
	s.pos++
	s.at = s.at.Add(17 * time.Minute)
	raw, err := json.Marshal(data)
	if err != nil {
		s.t.Fatalf("marshal %s: %v", typ, err)
	}
	env := events.Envelope{
		ID: fmt.Sprintf("ev%d", s.pos), Type: typ, SchemaVersion: 1, Tenant: "org1",
		AggregateType: aggType, AggregateID: aggID, OccurredAt: s.at, CausationID: cause, Data: raw,
	}
	payload, err := s.reg.Decode(env)
	if err != nil {
		s.t.Fatalf("decode %s: %v", typ, err)
	}
	s.out = append(s.out, projections.Event{Record: events.Record{Envelope: env, Position: s.pos}, Payload: payload})
}

func (s *stream) app(typ, app, cause string, data any) {
	s.add(typ, events.AggregateApp, app, cause, data)
}

func (s *stream) launch(app, device string) {
	s.add(events.TypeAppLaunched, events.AggregateUsage, app, "",
		&events.AppLaunched{AppID: app, Version: "1.0.0", DeviceID: device, Org: "org9", At: s.at})
}

// referenceBatch is two apps' lifecycles interleaved with launches that
// straddle a UTC midnight.
func referenceBatch(t *testing.T) []projections.Event {
	s := newStream(t)
	s.app(events.TypeAppCreated, "a1", "c1", &events.AppCreated{Name: "Weather"})
	s.launch("a1", "d1") // 2026-03-01 21:17 UTC
	s.app(events.TypeVersionSubmitted, "a1", "c2", &events.VersionSubmitted{Version: "1.0.0", Notes: "first"})
	s.app(events.TypeAppCreated, "a2", "c3", &events.AppCreated{Name: "Maps"})
	s.app(events.TypeVersionApproved, "a1", "c4", &events.VersionApproved{Version: "1.0.0"})
	s.launch("a1", "d2")
	s.app(events.TypeReleasePublished, "a1", "c5", &events.ReleasePublished{Version: "1.0.0"})
	s.app(events.TypeAppGranted, "a1", "c6", &events.AppGranted{Org: "org7"})
	s.launch("a1", "d1") // 2026-03-01 22:59 UTC
	s.launch("a2", "d3") // 2026-03-01 23:16 UTC
	s.app(events.TypeVersionSubmitted, "a2", "c7", &events.VersionSubmitted{Version: "0.9.0"})
	s.launch("a1", "d4") // 2026-03-02 00:10 UTC
	s.app(events.TypeVersionRejected, "a2", "c8", &events.VersionRejected{Version: "0.9.0", Reason: "crashes"})
	s.launch("a1", "d5")
	return s.out
}

// fold returns the apps a batch leads to, folded in memory.
func foldApps(batch []projections.Event) map[string]projections.App {
	out := map[string]projections.App{}
	for _, e := range batch {
		if e.AggregateType != events.AggregateApp {
			continue
		}
		a := out[e.AggregateID]
		a.Apply(e)
		out[e.AggregateID] = a
	}
	return out
}

// TestMongoProjectionIdempotent applies a batch through the MongoDB
// projection once, twice, after a crash mid-batch and in pieces, and
// checks every store ends up as a single in-memory application says.
func TestMongoProjectionIdempotent(t *testing.T) { eachMode(t, testMongoProjectionIdempotent) }

func testMongoProjectionIdempotent(t *testing.T, mode evmongo.Config) {
	batch := referenceBatch(t)
	last := batch[len(batch)-1].Position
	tests := []struct {
		name    string
		batches [][]projections.Event
	}{
		{name: "once", batches: [][]projections.Event{batch}},
		{name: "twice", batches: [][]projections.Event{batch, batch}},
		{name: "prefix then all", batches: [][]projections.Event{batch[:7], batch}},
		{name: "in pieces then all", batches: [][]projections.Event{batch[:3], batch[3:9], batch[9:], batch}},
		{name: "all then an old piece", batches: [][]projections.Event{batch, batch[2:6]}},
	}
	e := startEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctx(t)
			s, _ := e.store(t, inMode(mode, evmongo.Config{MaxBulk: 2})) // several bulks even here
			p := mongoPair{projections.NewApps(s), projections.NewDailyStats(s)}
			for i, b := range tt.batches {
				if err := p.Apply(ctx, 0, b); err != nil {
					t.Fatalf("batch %d: Apply: %v", i, err)
				}
			}
			for id, want := range foldApps(batch) {
				got, ok, err := s.App(ctx, id)
				if err != nil || !ok {
					t.Fatalf("App(%s) found=%v err=%v", id, ok, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("App(%s):\n got %+v\nwant %+v", id, got, want)
				}
			}
			a1, _, _ := s.App(ctx, "a1")
			if a1.Release != "1.0.0" || a1.Versions[0].Status != projections.VersionApproved || a1.CreatedAt.Location() != time.UTC {
				t.Errorf("a1 = %+v: want release 1.0.0, version approved, times in UTC", a1)
			}
			for _, c := range []struct {
				app, day string
				want     int64
			}{{"a1", "2026-03-01", 3}, {"a1", "2026-03-02", 2}, {"a2", "2026-03-01", 1}, {"a2", "2026-03-02", 0}} {
				if got, err := s.DailyLaunches(ctx, c.app, c.day); err != nil || got != c.want {
					t.Errorf("DailyLaunches(%s, %s) = %d, %v; want %d", c.app, c.day, got, err, c.want)
				}
			}
			if got, err := p.Checkpoint(ctx, 0); err != nil || got != last {
				t.Errorf("Checkpoint = %d, %v; want %d", got, err, last)
			}
		})
	}
}

// TestMongoProjectionRoundTrips measures what coalescing buys: a batch
// with many launches of few (app, day) pairs costs a handful of commands.
func TestMongoProjectionRoundTrips(t *testing.T) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, evmongo.Config{})
	st := newStream(t)
	st.app(events.TypeAppCreated, "a1", "c1", &events.AppCreated{Name: "Weather"})
	for i := range 200 {
		st.launch("a1", fmt.Sprintf("d%d", i%40))
	}
	e.counter.Reset()
	if err := (mongoPair{projections.NewApps(s), projections.NewDailyStats(s)}).Apply(ctx, 0, st.out); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// Apps: find (load apps), insert (the new app), update (checkpoint).
	// Daily stats: update (two day counters in one bulk), update (checkpoint).
	got := e.counter.Snapshot()
	want := map[string]int64{"find": 1, "insert": 1, "update": 3}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("commands for %d events = %v, want %v", len(st.out), got, want)
	}
	t.Logf("%d events in %d round trips", len(st.out), e.counter.Total())
}

// mongoPair applies both MongoDB projections to a batch, apps first, as a
// replica's two runners would.
type mongoPair struct {
	apps  *projections.Apps
	stats *projections.DailyStats
}

// Checkpoint is where the pair resumes: the lower of the two checkpoints.
func (m mongoPair) Checkpoint(ctx context.Context, p int) (uint64, error) {
	a, err := m.apps.Checkpoint(ctx, p)
	if err != nil {
		return 0, err
	}
	d, err := m.stats.Checkpoint(ctx, p)
	return min(a, d), err
}

func (m mongoPair) Apply(ctx context.Context, p int, b []projections.Event) error {
	if err := m.apps.Apply(ctx, p, b); err != nil {
		return err
	}
	return m.stats.Apply(ctx, p, b)
}
