package platform_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/infra/platform"
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

func TestUndecodableEventIsSkippedAndThePartitionMovesOn(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	r.command(cmd("app.create", "weather", "name", "Weather"))
	r.caughtUp()

	// Garbage and an unknown event type, written straight to the app's partition.
	nc, err := nats.Connect(r.r.NATSURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	subj := fmt.Sprintf("evflow.%d.usage.weather", events.Partition("weather", s.cfg.Partitions))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unknown := `{"id":"x1","type":"app.exploded","schema_version":1,"tenant":"org1","aggregate_type":"usage","aggregate_id":"weather","occurred_at":"2026-11-20T08:00:00Z","data":{}}`
	for _, raw := range []string{"not json at all", unknown} {
		if _, err := js.Publish(ctx, subj, []byte(raw)); err != nil {
			t.Fatalf("publish poison: %v", err)
		}
	}
	if code := r.call("POST", "/v1/launches", launches("weather", []string{"l1", "l2"}, []string{"d1"}), nil); code != http.StatusAccepted {
		t.Fatalf("launches: %d", code)
	}
	eventually(r, "/v1/apps/weather/stats?day="+day, func(_ int, st httpapi.Stats) error {
		if st.Launches != 2 || st.StoredLaunches != 2 {
			return fmt.Errorf("stats %+v, want the 2 launches after the poison", st)
		}
		return nil
	})
	r.caughtUp()
	for _, p := range r.status().Projections {
		if p.Skipped != 2 {
			t.Fatalf("projection %s skipped %d events, want the 2 undecodable ones", p.Name, p.Skipped)
		}
	}
}
