package redis

import (
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// TestRedisProjection runs projections.Redis over the store as the
// projector runtime does: a batch, the same batch again, and a prefix of it
// again (redelivery after a crash) leave the same state.
func TestRedisProjection(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ev := func(pos uint64, aggType string, payload any) projections.Event {
		return projections.Event{
			Record: events.Record{
				Envelope:  events.Envelope{Tenant: "org", AggregateType: aggType, AggregateID: "app1", OccurredAt: at},
				Partition: 3,
				Position:  pos,
			},
			Payload: payload,
		}
	}
	launch := func(pos uint64, device string) projections.Event {
		return ev(pos, events.AggregateUsage, &events.AppLaunched{AppID: "app1", DeviceID: device, At: at})
	}
	batch := []projections.Event{
		ev(1, events.AggregateApp, &events.ReleasePublished{Version: "1.0"}),
		launch(2, "d1"),
		ev(3, events.AggregateApp, &events.ReleasePublished{Version: "2.0"}),
		launch(4, "d2"),
		launch(5, "d1"),
		ev(6, events.AggregateApp, &events.ReleaseRolledBack{From: "2.0", To: "1.0"}),
	}
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		store := newStore(t, client, "")
		p := projections.NewRedis(store)
		for _, b := range [][]projections.Event{batch, batch, batch[:3], batch[2:]} {
			if err := p.Apply(ctx, 3, b); err != nil {
				t.Fatal(err)
			}
		}
		runHotCase(t, store, hotCase{
			releases: []releaseWant{{"app1", "1.0", 6, true}},
			launches: []launchWant{{"app1", "2026-03-01", 3, 2}},
			top:      map[string][]projections.AppCount{"2026-03-01": {{AppID: "app1", Launches: 3}}},
		})
		if pos, err := p.Checkpoint(ctx, 3); err != nil || pos != 6 {
			t.Errorf("checkpoint = %d, %v; want 6", pos, err)
		}
	})
}
