package platform_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

const day = "2026-11-20"

func cmd(typ, app string, kv ...string) map[string]any {
	m := map[string]any{"type": typ, "tenant": "org1", "app_id": app}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func launches(app string, ids []string, devices []string) map[string]any {
	var ls []map[string]any
	for i, id := range ids {
		ls = append(ls, map[string]any{"id": id, "app_id": app, "version": "1.0.0", "device_id": devices[i%len(devices)],
			"org": "org1", "at": day + "T08:00:00Z"})
	}
	return map[string]any{"launches": ls}
}

// appWhere polls the Mongo projection until cond holds.
func appWhere(r *replica, id string, cond func(projections.App) error) projections.App {
	r.t.Helper()
	return eventually(r, "/v1/apps/"+id, func(code int, a projections.App) error {
		if code != http.StatusOK {
			return fmt.Errorf("status %d", code)
		}
		return cond(a)
	})
}

// releaseIs polls the Redis projection until the app's release is want.
func releaseIs(r *replica, id, want string) {
	r.t.Helper()
	eventually(r, "/v1/apps/"+id+"/release", func(code int, rel httpapi.Release) error {
		if want == "" && code == http.StatusNotFound {
			return nil
		}
		if code != http.StatusOK || rel.Version != want {
			return fmt.Errorf("release %q (status %d), want %q", rel.Version, code, want)
		}
		return nil
	})
}

func TestEveryCommandReachesMongoAndRedis(t *testing.T) {
	onEachBus(t, testEveryCommandReachesMongoAndRedis)
}

func testEveryCommandReachesMongoAndRedis(t *testing.T, s *stand) {
	r := s.start(t)

	r.command(cmd("app.create", "weather", "name", "Weather"))
	appWhere(r, "weather", func(a projections.App) error {
		if a.Name != "Weather" || a.Tenant != "org1" {
			return fmt.Errorf("app %+v", a)
		}
		return nil
	})

	for _, c := range []map[string]any{
		cmd("app.submit_version", "weather", "version", "1.0.0"),
		cmd("app.approve_version", "weather", "version", "1.0.0"),
		cmd("app.publish_release", "weather", "version", "1.0.0"),
	} {
		r.command(c)
	}
	releaseIs(r, "weather", "1.0.0")
	appWhere(r, "weather", func(a projections.App) error {
		if a.Release != "1.0.0" || a.Version("1.0.0") == nil || a.Version("1.0.0").Status != projections.VersionApproved {
			return fmt.Errorf("release %q versions %+v", a.Release, a.Versions)
		}
		return nil
	})

	r.command(cmd("app.submit_version", "weather", "version", "1.1.0"))
	r.command(cmd("app.reject_version", "weather", "version", "1.1.0", "reason", "crashes on start"))
	appWhere(r, "weather", func(a projections.App) error {
		if v := a.Version("1.1.0"); v == nil || v.Status != projections.VersionRejected || v.Reason != "crashes on start" {
			return fmt.Errorf("version 1.1.0 = %+v", v)
		}
		return nil
	})

	for _, c := range []map[string]any{
		cmd("app.submit_version", "weather", "version", "2.0.0"),
		cmd("app.approve_version", "weather", "version", "2.0.0"),
		cmd("app.publish_release", "weather", "version", "2.0.0"),
	} {
		r.command(c)
	}
	releaseIs(r, "weather", "2.0.0")
	r.command(cmd("app.rollback_release", "weather"))
	releaseIs(r, "weather", "1.0.0")
	appWhere(r, "weather", func(a projections.App) error {
		if a.Release != "1.0.0" {
			return fmt.Errorf("mongo release %q, want 1.0.0 after rollback", a.Release)
		}
		return nil
	})

	r.command(cmd("app.grant", "weather", "org", "org2"))
	appWhere(r, "weather", func(a projections.App) error {
		if !reflect.DeepEqual(a.Grants, []string{"org2"}) {
			return fmt.Errorf("grants %v", a.Grants)
		}
		return nil
	})
	r.command(cmd("app.revoke", "weather", "org", "org2"))
	appWhere(r, "weather", func(a projections.App) error {
		if len(a.Grants) != 0 {
			return fmt.Errorf("grants %v after revoke", a.Grants)
		}
		return nil
	})

	if code := r.call("POST", "/v1/launches", launches("weather", []string{"l1", "l2", "l3", "l4", "l5"}, []string{"d1", "d2", "d3"}), nil); code != http.StatusAccepted {
		t.Fatalf("launches: %d", code)
	}
	if code := r.call("POST", "/v1/launches", launches("news", []string{"l6", "l7"}, []string{"d1"}), nil); code != http.StatusAccepted {
		t.Fatalf("launches: %d", code)
	}
	eventually(r, "/v1/apps/weather/stats?day="+day, func(_ int, s httpapi.Stats) error {
		if s.Launches != 5 || s.UniqueDevices != 3 || s.StoredLaunches != 5 {
			return fmt.Errorf("stats %+v, want 5 launches, 3 devices, 5 stored", s)
		}
		return nil
	})
	eventually(r, "/v1/top?day="+day, func(_ int, top httpapi.Top) error {
		want := fmt.Sprint([]any{"weather", 5, "news", 2})
		var got []any
		for _, a := range top.Apps {
			got = append(got, a.AppID, a.Launches)
		}
		if fmt.Sprint(got) != want {
			return fmt.Errorf("top %v, want %s", got, want)
		}
		return nil
	})
}

func TestDuplicateDeliveryChangesProjectionsOnce(t *testing.T) {
	onEachBus(t, testDuplicateDeliveryChangesProjectionsOnce)
}

func testDuplicateDeliveryChangesProjectionsOnce(t *testing.T, s *stand) {
	r := s.start(t)
	r.command(cmd("app.create", "weather", "name", "Weather"))
	ids := []string{"l1", "l2", "l3", "l4", "l5", "l6"}
	// A producer retrying the same events three times: stored once.
	for range 3 {
		if code := r.call("POST", "/v1/launches", launches("weather", ids, []string{"d1", "d2", "d3", "d4"}), nil); code != http.StatusAccepted {
			t.Fatalf("launches: %d", code)
		}
	}
	if st := r.status(); st.StreamMessages != 7 {
		t.Fatalf("stream holds %d events, want 7 (1 command + 6 launches)", st.StreamMessages)
	}
	r.caughtUp()
	mongoURI := s.mongo.URI()
	beforeRedis, beforeMongo := testenv.DumpRedis(t, s.redis.Addr), testenv.DumpMongo(t, mongoURI, s.cfg.MongoDB)

	// Redelivery: forget every checkpoint, so both projections receive the
	// whole stream again, twice.
	for round := range 2 {
		r.stop()
		resetCheckpoints(t, s)
		r = s.start(t)
		r.caughtUp()
		for _, p := range r.status().Projections {
			if p.Applied != 7 {
				t.Fatalf("round %d: %s applied %d events, want the 7 redelivered", round, p.Name, p.Applied)
			}
		}
		if d := testenv.DiffDumps(beforeRedis, testenv.DumpRedis(t, s.redis.Addr)); d != "" {
			t.Fatalf("round %d: redis changed by redelivery:\n%s", round, d)
		}
		if d := testenv.DiffDumps(beforeMongo, testenv.DumpMongo(t, mongoURI, s.cfg.MongoDB)); d != "" {
			t.Fatalf("round %d: mongo changed by redelivery:\n%s", round, d)
		}
	}
	eventually(r, "/v1/apps/weather/stats?day="+day, func(_ int, st httpapi.Stats) error {
		if st.Launches != 6 || st.UniqueDevices != 4 || st.StoredLaunches != 6 {
			return fmt.Errorf("stats %+v, want 6 launches, 4 devices", st)
		}
		return nil
	})
}

func TestBurstOnOneAppEndsInTheFoldOfItsEvents(t *testing.T) {
	onEachBus(t, testBurstOnOneAppEndsInTheFoldOfItsEvents)
}

func testBurstOnOneAppEndsInTheFoldOfItsEvents(t *testing.T, s *stand) {
	r := s.start(t)
	r.command(cmd("app.create", "burst", "name", "Burst"))

	// Sample the read model while the burst runs: it may lag, never go back.
	var sampleErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last int64
		for {
			select {
			case <-stop:
				return
			default:
			}
			var a projections.App
			if code := r.call("GET", "/v1/apps/burst", nil, &a); code == http.StatusOK {
				if a.Position < last {
					sampleErr.Store(fmt.Sprintf("app went back from position %d to %d", last, a.Position))
				}
				last = a.Position
			}
		}
	}()

	// Concurrent submissions race on the app; optimistic concurrency orders them.
	var cw sync.WaitGroup
	for w := range 4 {
		cw.Add(1)
		go func() {
			defer cw.Done()
			for i := range 5 {
				r.command(cmd("app.submit_version", "burst", "version", fmt.Sprintf("%d.%d.0", w, i)))
			}
		}()
	}
	cw.Wait()
	for w := range 4 {
		v := fmt.Sprintf("%d.0.0", w)
		r.command(cmd("app.approve_version", "burst", "version", v))
		r.command(cmd("app.publish_release", "burst", "version", v))
	}
	r.command(cmd("app.rollback_release", "burst"))
	r.caughtUp()
	close(stop)
	wg.Wait()
	if msg := sampleErr.Load(); msg != nil {
		t.Fatal(msg)
	}

	want := foldStream(t, r, "burst")
	got := appWhere(r, "burst", func(projections.App) error { return nil })
	if len(want.Versions) != 20 || want.Release != "2.0.0" {
		t.Fatalf("fold of the stream: %d versions, release %q; want 20 and 2.0.0", len(want.Versions), want.Release)
	}
	if want.Grants == nil {
		want.Grants = []string{} // the API answers [] for an empty list
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("mongo app\n%s\nwant the fold of the stream\n%s", gotJSON, wantJSON)
	}
	releaseIs(r, "burst", want.Release)
}

// foldStream folds the app's events, read straight from the replica's
// event log (its partition, up to the head).
func foldStream(t *testing.T, r *replica, id string) projections.App {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := r.r.Bus
	heads, err := b.Log.Heads(ctx)
	if err != nil {
		t.Fatalf("heads: %v", err)
	}
	p := events.Partition(id, len(heads))
	sub, err := b.NewSubscriber(func(context.Context, int) (uint64, error) { return 0, nil }, 64)
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, bus.PartitionTopic(b.Topic, p))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	var app projections.App
	reg := events.Domain()
	for m := range ch {
		m.Ack()
		rec, err := bus.FromMessage(m)
		if err != nil {
			t.Fatalf("stream event: %v", err)
		}
		if rec.AggregateType == events.AggregateApp && rec.AggregateID == id {
			payload, err := reg.Decode(rec.Envelope)
			if err != nil {
				t.Fatalf("stream event: %v", err)
			}
			app.Apply(projections.Event{Record: rec, Payload: payload})
		}
		if rec.Position >= heads[p] {
			return app
		}
	}
	t.Fatalf("partition %d ended before its head %d", p, heads[p])
	return app
}

// resetCheckpoints deletes every projection checkpoint, in both stores.
func resetCheckpoints(t *testing.T, s *stand) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mc, err := mongo.Connect(options.Client().ApplyURI(s.mongo.URI()))
	if err != nil {
		t.Fatalf("mongo: %v", err)
	}
	defer func() { _ = mc.Disconnect(ctx) }()
	if _, err := mc.Database(s.cfg.MongoDB).Collection("checkpoints").DeleteMany(ctx, bson.M{}); err != nil {
		t.Fatalf("delete mongo checkpoints: %v", err)
	}
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.redis.Addr}, DisableCache: true})
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	defer rc.Close()
	keys, err := rc.Do(ctx, rc.B().Keys().Pattern("ev:ckpt:*").Build()).AsStrSlice()
	if err != nil || len(keys) == 0 {
		t.Fatalf("redis checkpoint keys %v: %v", keys, err)
	}
	if err := rc.Do(ctx, rc.B().Del().Key(keys...).Build()).Error(); err != nil {
		t.Fatalf("delete redis checkpoints: %v", err)
	}
}
