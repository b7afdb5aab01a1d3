package platform_test

// Recovery drills where an operator rebuilds a projection with a replay.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/evflow/evflow/infra/platform"
	"github.com/evflow/evflow/infra/replay"
	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

func TestDrillDropMongoAppsThenReplay(t *testing.T) { onEachBus(t, testDrillDropMongoAppsThenReplay) }

func testDrillDropMongoAppsThenReplay(t *testing.T, s *stand) {
	r := s.start(t)
	w := newDrillWorkload(20)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 300)
	w.lifecycle(t, r, 1)
	w.launch(t, r, 200)
	r.caughtUp()
	checkAppsFold(t, r, w)
	before := mongoState(t, s)
	beforeAPI := appBodies(t, r, w.apps)
	st := r.status()

	// The drill: the apps collection is lost.
	db := drillMongo(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.Collection("apps").Drop(ctx); err != nil {
		t.Fatalf("drop apps: %v", err)
	}
	if code, _ := r.getJSON("/v1/apps/app00", nil); code != http.StatusNotFound {
		t.Fatalf("GET app00 after the drop: %d, want 404", code)
	}

	plans, sums := s.mustReplay(t, r, platform.ReplayOptions{Projections: []string{"apps"}})
	if p := plans[0]; p.Live != "" || p.Resume || p.Seed || p.Pending != st.StreamMessages {
		t.Fatalf("plan %+v: want a new generation beside the original, from the beginning, %d events", p, st.StreamMessages)
	}
	gen := sums[0].Generation
	if gen == "" || sums[0].Previous != "" || sums[0].Events != st.StreamMessages {
		t.Fatalf("summary %+v: want a new generation replacing the original after %d events", sums[0], st.StreamMessages)
	}
	r.waitGeneration("apps", gen)

	if d := testenv.DiffDumps(before, mongoState(t, s)); d != "" {
		t.Fatalf("mongo after the replay differs from before the drop:\n%s", d)
	}
	names := drillCollections(t, db)
	if slices.Contains(names, "apps") || !slices.Contains(names, "apps"+gen) {
		t.Fatalf("collections %v: want apps%s and no apps", names, gen)
	}
	var left []bson.Raw
	cur, err := db.Collection("checkpoints").Find(ctx, bson.D{{Key: "projection", Value: "apps"}})
	if err == nil {
		err = cur.All(ctx, &left)
	}
	if err != nil || len(left) != 0 {
		t.Fatalf("old generation's apps checkpoints: %d left (%v)", len(left), err)
	}
	if d := testenv.DiffDumps(beforeAPI, appBodies(t, r, w.apps)); d != "" {
		t.Fatalf("GET /v1/apps/{id} after the replay:\n%s", d)
	}

	// Live processing goes on in the new generation.
	r.command(cmd("app.submit_version", "app01", "version", "2.0.0"))
	appWhere(r, "app01", func(a projections.App) error {
		if a.Version("2.0.0") == nil {
			return errors.New("version 2.0.0 not projected")
		}
		return nil
	})
	r.caughtUp()
	if n, err := db.Collection("apps"+gen).CountDocuments(ctx, bson.D{{Key: "versions.version", Value: "2.0.0"}}); err != nil || n != 1 {
		t.Fatalf("apps%s holds %d apps with version 2.0.0 (%v), want 1", gen, n, err)
	}

	// A restarted replica opens the new generation and reapplies nothing.
	r.stop()
	r = s.start(t)
	r.caughtUp()
	if p := drillProjection(t, r.status(), "apps"); p.Generation != gen || p.Applied != 0 {
		t.Fatalf("apps after a restart: generation %q, %d events applied; want %q and none", p.Generation, p.Applied, gen)
	}
	checkAppsFold(t, r, w)
}

func TestDrillFlushRedisThenReplay(t *testing.T) { onEachBus(t, testDrillFlushRedisThenReplay) }

func testDrillFlushRedisThenReplay(t *testing.T, s *stand) {
	r := s.start(t)
	w := newDrillWorkload(20)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 300)
	w.lifecycle(t, r, 1)
	w.launch(t, r, 200)
	w.settled(t, r)
	before := onlyGeneration(t, redisState(t, s), "")

	rc := drillRedis(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rc.Do(ctx, rc.B().Flushall().Build()).Error(); err != nil {
		t.Fatalf("flushall: %v", err)
	}

	// While the replay runs, reads are sampled: reported, not checked
	// (see TestDrillInterruptedRedisReplayAfterDataLossStillRecovers).
	var reads, wrong int
	_, sums := s.mustReplay(t, r, platform.ReplayOptions{Projections: []string{"redis"}, ProgressEvery: 50 * time.Millisecond,
		Progress: func(p replay.Progress) {
			if p.Done < p.Total {
				reads++
				if w.checkApp(r, w.apps[reads%len(w.apps)]) != nil {
					wrong++
				}
			}
		}})
	gen := sums[0].Generation
	if gen == "" {
		t.Fatalf("summary %+v: want a new generation", sums[0])
	}
	r.waitGeneration("redis", gen)
	st := r.status()
	t.Logf("replayed %d events into %s in %s; %d of %d reads wrong during the replay; %d rebuilds by the replica itself",
		sums[0].Events, gen, sums[0].Duration.Round(time.Millisecond), wrong, reads, st.Rebuilds)

	after := onlyGeneration(t, redisState(t, s), gen)
	if d := testenv.DiffDumps(before, after); d != "" {
		t.Fatalf("redis after the replay differs from before the flush:\n%s", d)
	}
	if got, want := after["ev:ckpt:redis"], checkpointsHash(st.Heads); got != want {
		t.Fatalf("checkpoints of %s: %s, want the heads %s", gen, got, want)
	}
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
}

func TestDrillRestoreOlderMongoSnapshotThenReplayFromItsPosition(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(20)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 300)
	r.caughtUp()

	// The backup. It holds, on every partition, every event up to that
	// partition's checkpoint; positions are stream-wide and partitions
	// advance independently, so the latest position a replay may start
	// from without missing an event on any partition is the lowest
	// checkpoint + 1. (The stream's last position + 1 is only right when,
	// as here, nothing was in flight; a lagging partition would lose
	// events.) Checkpoints are read first: documents copied after them
	// can only be newer.
	db := drillMongo(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	colls := []string{"checkpoints", "apps", "daily_stats"}
	snapshot := map[string][]bson.Raw{}
	for _, c := range colls {
		cur, err := db.Collection(c).Find(ctx, bson.D{})
		if err != nil {
			t.Fatalf("snapshot %s: %v", c, err)
		}
		var docs []bson.Raw
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatalf("snapshot %s: %v", c, err)
		}
		snapshot[c] = docs
	}
	from := uint64(0)
	for _, name := range []string{"apps", "daily_stats"} {
		for p := range s.cfg.Partitions {
			var pos int64
			for _, d := range snapshot["checkpoints"] {
				if d.Lookup("_id").StringValue() == fmt.Sprintf("%s:%d", name, p) {
					pos = d.Lookup("pos").AsInt64()
				}
			}
			if from == 0 || uint64(pos)+1 < from {
				from = uint64(pos) + 1
			}
		}
	}
	snapStatus := r.status()
	if from <= 1 || from > snapStatus.StreamLast {
		t.Fatalf("snapshot position %d, stream at %d: the drill needs a position inside the stream", from, snapStatus.StreamLast)
	}

	w.lifecycle(t, r, 1)
	w.launch(t, r, 300)
	r.caughtUp()
	checkAppsFold(t, r, w)
	before := mongoState(t, s)
	st := r.status()

	// The drill: the database is restored from the older backup.
	for _, c := range colls {
		if _, err := db.Collection(c).DeleteMany(ctx, bson.D{}); err != nil {
			t.Fatalf("restore %s: %v", c, err)
		}
		if _, err := db.Collection(c).InsertMany(ctx, snapshot[c]); err != nil {
			t.Fatalf("restore %s: %v", c, err)
		}
	}
	var a projections.App
	if code, err := r.getJSON("/v1/apps/app01", &a); err != nil || code != http.StatusOK || a.Release != "1.0.0" || a.Version("1.1.0") != nil {
		t.Fatalf("app01 after the restore: %d %+v (%v), want the backup's state", code, a, err)
	}

	plans, sums := s.mustReplay(t, r, platform.ReplayOptions{Projections: []string{"apps", "daily_stats"}, From: replay.From{Seq: from}})
	for i, p := range plans {
		if p.Live != "" || p.Resume || !p.Seed || p.From != strconv.FormatUint(from, 10) || p.Pending == 0 || p.Pending > st.StreamLast-from+1 {
			t.Fatalf("plan %d %+v: want a seeded new generation from %d", i, p, from)
		}
	}
	for _, sum := range sums {
		r.waitGeneration(sum.Projection, sum.Generation)
	}
	if sums[0].Generation == sums[1].Generation {
		t.Fatalf("apps and daily_stats replayed into one generation %s", sums[0].Generation)
	}
	if d := testenv.DiffDumps(before, mongoState(t, s)); d != "" {
		t.Fatalf("mongo after the restore and replay differs from before the restore:\n%s", d)
	}
	names := drillCollections(t, db)
	for _, c := range []string{"apps", "daily_stats"} {
		if slices.Contains(names, c) {
			t.Fatalf("collections %v: the original %s is still there", names, c)
		}
	}
	checkAppsFold(t, r, w)
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
	r.caughtUp()
}

func TestReplayResumesAfterInterruption(t *testing.T) {
	onEachBus(t, testReplayResumesAfterInterruption)
}

func testReplayResumesAfterInterruption(t *testing.T, s *stand) {
	r := s.start(t)
	w := newDrillWorkload(8)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 2000)
	r.caughtUp()
	before := mongoState(t, s)
	total := r.status().StreamMessages
	const small = 8 // events per batch: a replay slow enough to interrupt

	// The first run is interrupted once some, not all, events are applied.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, interrupt := context.WithCancel(ctx)
	var doneAtCut uint64
	opts := platform.ReplayOptions{Projections: []string{"daily_stats"}, ProgressEvery: 5 * time.Millisecond,
		Progress: func(p replay.Progress) {
			if doneAtCut == 0 && p.Done > 0 && p.Done < p.Total {
				doneAtCut = p.Done
				interrupt()
			}
		}}
	_, _, err := s.runReplay(runCtx, r, opts, small, nil)
	interrupt()
	if err == nil || !errors.Is(err, context.Canceled) || doneAtCut == 0 {
		t.Fatalf("interrupted replay: %v after %d events: want it cancelled part way", err, doneAtCut)
	}
	db := drillMongo(t, s)
	var rec struct {
		Live, Building, From string
	}
	if err := db.Collection("generations").FindOne(ctx, bson.D{{Key: "_id", Value: "daily_stats"}}).Decode(&rec); err != nil {
		t.Fatalf("daily_stats record: %v", err)
	}
	if rec.Live != "" || rec.Building == "" || rec.From != "beginning" {
		t.Fatalf("record after the interruption %+v: want the original live and a generation being built", rec)
	}

	plans, _, err := s.runReplay(ctx, r, platform.ReplayOptions{Projections: []string{"daily_stats"}, DryRun: true}, small, nil)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if p := plans[0]; !p.Resume || p.Building != rec.Building || p.Pending == 0 || p.Pending >= total {
		t.Fatalf("plan %+v: want to resume %s with fewer than the %d events", p, rec.Building, total)
	}

	logs := &testenv.Buffer{}
	_, sums, err := s.runReplay(ctx, r, platform.ReplayOptions{Projections: []string{"daily_stats"}}, small, logs)
	if err != nil {
		t.Fatalf("resumed replay: %v", err)
	}
	if sum := sums[0]; sum.Generation != rec.Building || sum.Events == 0 || sum.Events >= total || sum.Events != plans[0].Pending {
		t.Fatalf("summary %+v: want %s resumed with the %d pending of %d events", sum, rec.Building, plans[0].Pending, total)
	}
	if !strings.Contains(logs.String(), "resuming an interrupted rebuild") {
		t.Fatalf("the replay did not log resuming:\n%s", logs)
	}
	t.Logf("interrupted after %d events; resumed %s with %d of %d", doneAtCut, rec.Building, sums[0].Events, total)
	r.waitGeneration("daily_stats", rec.Building)
	if d := testenv.DiffDumps(before, mongoState(t, s)); d != "" {
		t.Fatalf("mongo after the resumed replay differs from before:\n%s", d)
	}
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
}

// TestDrillInterruptedRedisReplayAfterDataLossStillRecovers: Redis lost
// its data and an operator starts a replay of it at once, before a
// replica noticed; the replay is interrupted. The hot path must still
// recover (the replicas rebuild it and answer from MongoDB meanwhile);
// running the replay again finishes it.
func TestDrillInterruptedRedisReplayAfterDataLossStillRecovers(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(12)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 1000)
	w.settled(t, r)
	before := onlyGeneration(t, redisState(t, s), "")

	// Lose the data just after the replica read the records, so that the
	// replay, not the replica, is the first to find the record missing.
	rc := drillRedis(t, s)
	calls := hgetallCalls(t, rc)
	testenv.WaitEvery(t, 3*time.Second, time.Millisecond, func() error {
		if hgetallCalls(t, rc) == calls {
			return errors.New("the replica has not read the records")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rc.Do(ctx, rc.B().Flushall().Build()).Error(); err != nil {
		t.Fatalf("flushall: %v", err)
	}
	runCtx, interrupt := context.WithCancel(ctx)
	opts := platform.ReplayOptions{Projections: []string{"redis"}, ProgressEvery: 5 * time.Millisecond,
		Progress: func(replay.Progress) { interrupt() }}
	if _, _, err := s.runReplay(runCtx, r, opts, 8, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted replay: %v, want cancelled", err)
	}
	interrupt()

	// The replicas had 5 polls to notice the lost data.
	var last error
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if last = w.check(r); last == nil {
			break
		}
	}
	if last != nil {
		st := r.status()
		rec, _ := rc.Do(ctx, rc.B().Hgetall().Key("evflow:generation:redis").Build()).AsStrMap()
		t.Errorf("5s after the interrupted replay the hot path still answers wrong: %v\n"+
			"redis projection %+v, %d rebuilds; record %v", last, drillProjection(t, st, "redis"), st.Rebuilds, rec)
	}

	// Running the replay again resumes and finishes it.
	_, sums := s.mustReplay(t, r, platform.ReplayOptions{Projections: []string{"redis"}})
	r.waitGeneration("redis", sums[0].Generation)
	after := onlyGeneration(t, redisState(t, s), sums[0].Generation)
	if d := testenv.DiffDumps(before, after); d != "" {
		t.Fatalf("redis after the resumed replay differs from before the flush:\n%s", d)
	}
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
}

// TestDrillReplayUnderTrafficLosesNothing: apps and the Redis projection
// are replayed from the beginning while commands and launches flow; the
// swapped-in generations hold every event, before and after the swap.
func TestDrillReplayUnderTrafficLosesNothing(t *testing.T) {
	onEachBus(t, testDrillReplayUnderTrafficLosesNothing)
}

func testDrillReplayUnderTrafficLosesNothing(t *testing.T, s *stand) {
	r := s.start(t)
	w := newDrillWorkload(12)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 600)
	r.caughtUp()

	type result struct {
		sums []replay.Summary
		err  error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		_, sums, err := s.runReplay(ctx, r, platform.ReplayOptions{Projections: []string{"apps", "redis"}}, 0, nil)
		done <- result{sums, err}
	}()
	var res result
	rounds := 0
traffic:
	for {
		select {
		case res = <-done:
			break traffic
		default:
		}
		if rounds == 3 {
			w.lifecycle(t, r, 1) // commands decided against the apps while they are replayed
		}
		w.launch(t, r, 30)
		rounds++
		time.Sleep(20 * time.Millisecond)
	}
	if res.err != nil {
		t.Fatalf("replay: %v", res.err)
	}
	w.launch(t, r, 30) // after the swap
	if rounds < 10 {
		t.Fatalf("only %d rounds of traffic during the replay", rounds)
	}
	for _, sum := range res.sums {
		r.waitGeneration(sum.Projection, sum.Generation)
	}
	r.caughtUp()
	checkAppsFold(t, r, w)
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
	mongoState(t, s) // no old generation left behind
	onlyGeneration(t, redisState(t, s), res.sums[1].Generation)
	t.Logf("%d rounds of traffic during the replay; replayed %d and %d events", rounds, res.sums[0].Events, res.sums[1].Events)
}
