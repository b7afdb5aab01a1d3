package platform_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/infra/testenv"
)

func TestRestartOnTheSameDataDirKeepsStateAndReappliesNothing(t *testing.T) {
	s := newEmbeddedStand(t) // NATS and FerretDB in the data directory, as `evflow serve`
	r := s.start(t)
	r.command(cmd("app.create", "weather", "name", "Weather"))
	r.command(cmd("app.submit_version", "weather", "version", "1.0.0"))
	r.command(cmd("app.approve_version", "weather", "version", "1.0.0"))
	r.command(cmd("app.publish_release", "weather", "version", "1.0.0"))
	if code := r.call("POST", "/v1/launches", launches("weather", []string{"l1", "l2", "l3"}, []string{"d1", "d2"}), nil); code != http.StatusAccepted {
		t.Fatalf("launches: %d", code)
	}
	r.caughtUp()
	beforeRedis := testenv.DumpRedis(t, s.redis.Addr)
	beforeMongo := testenv.DumpMongo(t, r.r.MongoURI, s.cfg.MongoDB)
	beforeStream := r.status().StreamMessages
	r.stop()

	r = s.start(t)
	if st := r.status(); st.StreamMessages != beforeStream {
		t.Fatalf("stream holds %d events after restart, want %d", st.StreamMessages, beforeStream)
	}
	if d := testenv.DiffDumps(beforeMongo, testenv.DumpMongo(t, r.r.MongoURI, s.cfg.MongoDB)); d != "" {
		t.Fatalf("mongo changed across restart:\n%s", d)
	}
	// One new event proves the projections run; only it may be applied.
	if code := r.call("POST", "/v1/launches", launches("weather", []string{"l4"}, []string{"d3"}), nil); code != http.StatusAccepted {
		t.Fatalf("launches: %d", code)
	}
	eventually(r, "/v1/apps/weather/stats?day="+day, func(_ int, st httpapi.Stats) error {
		if st.Launches != 4 || st.UniqueDevices != 3 || st.StoredLaunches != 4 {
			return fmt.Errorf("stats %+v, want 4 launches from 3 devices", st)
		}
		return nil
	})
	r.caughtUp()
	for _, p := range r.status().Projections {
		if p.Applied != 1 {
			t.Fatalf("projection %s applied %d events after restart, want only the 1 new one", p.Name, p.Applied)
		}
	}
	releaseIs(r, "weather", "1.0.0")
	afterRedis := testenv.DumpRedis(t, s.redis.Addr)
	if beforeRedis["ev:{weather}:release"] != afterRedis["ev:{weather}:release"] {
		t.Fatalf("release key changed across restart: %s → %s", beforeRedis["ev:{weather}:release"], afterRedis["ev:{weather}:release"])
	}
}
