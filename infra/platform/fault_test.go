package platform_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/infra/platform"
	"github.com/evflow/evflow/infra/projector"
)

func TestRedisOutageStallsProjectionThenCatchesUpExactly(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	ids := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("l%d", i))
		}
		return out
	}
	devices := []string{"d1", "d2", "d3", "d4", "d5"}
	if code := r.call("POST", "/v1/launches", launches("weather", ids(0, 100), devices), nil); code != http.StatusAccepted {
		t.Fatalf("launches: %d", code)
	}
	r.caughtUp()

	// Redis hangs: launches are still accepted (the broker stored them) ...
	s.redis.Pause()
	for i := 1; i < 4; i++ {
		if code := r.call("POST", "/v1/launches", launches("weather", ids(100*i, 100*i+100), devices), nil); code != http.StatusAccepted {
			s.redis.Resume()
			t.Fatalf("launches during the outage: %d", code)
		}
	}
	// ... and the MongoDB projections move on while the Redis one waits.
	eventually(r, "/v1/status", func(_ int, st platform.Status) error {
		caught := 0
		for _, p := range st.Projections {
			if p.Name == "redis" {
				continue
			}
			if p.Error != "" {
				return fmt.Errorf("%s: %s", p.Name, p.Error)
			}
			for _, lag := range p.Lag {
				if lag > 0 {
					return fmt.Errorf("%s lags %v", p.Name, p.Lag)
				}
			}
			caught++
		}
		if caught != 2 {
			return fmt.Errorf("%d MongoDB projections caught up, want apps and daily_stats", caught)
		}
		return nil
	})
	s.redis.Resume()
	// Once Redis is back, every launch counts exactly once.
	eventually(r, "/v1/apps/weather/stats?day="+day, func(_ int, st httpapi.Stats) error {
		if st.Launches != 400 || st.UniqueDevices != 5 || st.StoredLaunches != 400 {
			return fmt.Errorf("stats %+v, want 400 launches from 5 devices", st)
		}
		return nil
	})
	r.caughtUp()
}

func TestUndecodableEventsAreParkedAndThePartitionMovesOn(t *testing.T) {
	onEachBus(t, testUndecodableEventsAreParkedAndThePartitionMovesOn)
}

func testUndecodableEventsAreParkedAndThePartitionMovesOn(t *testing.T, s *stand) {
	r := s.start(t)
	// Two apps on one partition.
	other := ""
	for i := 0; other == ""; i++ {
		if id := fmt.Sprintf("news%d", i); events.Partition(id, s.cfg.Partitions) == events.Partition("weather", s.cfg.Partitions) {
			other = id
		}
	}
	r.command(cmd("app.create", "weather", "name", "Weather"))
	r.command(cmd("app.create", other, "name", "News"))
	r.caughtUp()

	// Garbage and an unknown event type, written straight to weather's usage.
	unknown := `{"id":"x1","type":"app.exploded","schema_version":1,"tenant":"org1","aggregate_type":"usage","aggregate_id":"weather","occurred_at":"2026-11-20T08:00:00Z","data":{}}`
	for i, raw := range []string{"not json at all", unknown} {
		m := message.NewMessage(fmt.Sprintf("poison-%d", i), []byte(raw))
		m.Metadata.Set(bus.MetaPartition, strconv.Itoa(events.Partition("weather", s.cfg.Partitions)))
		m.Metadata.Set(bus.MetaAggregateType, events.AggregateUsage)
		m.Metadata.Set(bus.MetaAggregateID, "weather")
		if err := r.r.Bus.Publisher.Publish(r.r.Bus.Topic, m); err != nil {
			t.Fatalf("publish poison: %v", err)
		}
	}
	for _, app := range []string{"weather", other} {
		if code := r.call("POST", "/v1/launches", launches(app, []string{app + "-l1", app + "-l2"}, []string{"d1"}), nil); code != http.StatusAccepted {
			t.Fatalf("launches: %d", code)
		}
	}
	// The other app's launches, after the poison on the same partition, are applied.
	eventually(r, "/v1/apps/"+other+"/stats?day="+day, func(_ int, st httpapi.Stats) error {
		if st.Launches != 2 || st.StoredLaunches != 2 {
			return fmt.Errorf("stats %+v, want the 2 launches after the poison", st)
		}
		return nil
	})
	r.caughtUp()
	// weather's wait behind its poison, in every projection: 2 poison + 2 held.
	for _, p := range r.status().Projections {
		if p.Parked != 4 || p.DeadLetters != 4 || p.Skipped != 0 {
			t.Fatalf("projection %s parked %d, %d dead letters, skipped %d; want 4, 4, 0", p.Name, p.Parked, p.DeadLetters, p.Skipped)
		}
	}
	var list struct{ Letters []httpapi.Letter }
	if code := r.call("GET", "/v1/dlq?projection=redis", nil, &list); code != http.StatusOK || len(list.Letters) != 4 {
		t.Fatalf("GET /v1/dlq: %d, %d letters; want 4", code, len(list.Letters))
	}
	if l := list.Letters[0]; !strings.Contains(l.Reason, "undecodable") || l.AggregateID != "weather" || string(l.Event) != `"not json at all"` {
		t.Fatalf("first letter %+v: want the garbage, undecodable", l)
	}
	var one httpapi.Letter
	if code := r.call("GET", fmt.Sprintf("/v1/dlq/%d", list.Letters[1].Seq), nil, &one); code != http.StatusOK || one.EventID != list.Letters[1].EventID {
		t.Fatalf("GET /v1/dlq/{seq}: %d %+v", code, one)
	}
	if code := r.call("POST", "/v1/dlq/redrive?projection=nope", nil, nil); code != http.StatusBadRequest {
		t.Fatalf("redrive of an unknown projection: %d, want 400", code)
	}

	// The poison can never be decoded: an operator removes it, then
	// redrives what waited behind it, which is applied once.
	for _, name := range []string{"apps", "daily_stats", "redis"} {
		var ls struct{ Letters []httpapi.Letter }
		r.call("GET", "/v1/dlq?projection="+name, nil, &ls)
		for _, l := range ls.Letters[:2] {
			if code := r.call("DELETE", fmt.Sprintf("/v1/dlq/%d", l.Seq), nil, nil); code != http.StatusNoContent {
				t.Fatalf("DELETE letter %d: %d", l.Seq, code)
			}
		}
	}
	for range 2 { // the second redrive finds nothing left
		var res struct{ Results []projector.RedriveResult }
		if code := r.call("POST", "/v1/dlq/redrive", nil, &res); code != http.StatusOK || len(res.Results) != 3 {
			t.Fatalf("redrive: %d %+v", code, res)
		}
	}
	eventually(r, "/v1/apps/weather/stats?day="+day, func(_ int, st httpapi.Stats) error {
		if st.Launches != 2 || st.StoredLaunches != 2 {
			return fmt.Errorf("stats %+v, want weather's 2 launches, once", st)
		}
		return nil
	})
	for _, p := range r.status().Projections {
		if p.DeadLetters != 0 {
			t.Fatalf("projection %s has %d dead letters left", p.Name, p.DeadLetters)
		}
	}
}
