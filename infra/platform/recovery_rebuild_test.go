package platform_test

// Recovery drills where the replicas rebuild the Redis projection by themselves.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evflow/evflow/infra/testenv"
)

func TestDrillRedisRestartWithoutPersistenceRebuildsByItself(t *testing.T) {
	s := newStand(t)
	s.cfg.MaxBatch = 8 // a rebuild slow enough to be read during
	r := s.start(t)
	w := newDrillWorkload(20)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 2000)
	w.lifecycle(t, r, 1)
	w.launch(t, r, 2000)
	w.settled(t, r)
	before := onlyGeneration(t, redisState(t, s), "")
	old := drillProjection(t, r.status(), "redis").Generation
	sample := []string{"app00", "app01", "app02", "app03", "app07"}

	restarted := time.Now()
	s.redis.Restart()

	// Until the replica notices (it reads the records four times a second) the
	// empty Redis answers; from then on every read must be right,
	// answered from MongoDB until the rebuild has caught up.
	var unnoticed, during, wrongUnnoticed int
	var noticedAfter time.Duration
	rebuilding := false
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no completed rebuild 20s after the restart (rebuilding seen: %v)", rebuilding)
		}
		st := r.status()
		p := drillProjection(t, st, "redis")
		if p.Rebuilding && !rebuilding {
			rebuilding, noticedAfter = true, time.Since(restarted)
		}
		if !p.Rebuilding && p.Generation != old {
			if st.Rebuilds < 1 {
				t.Fatalf("rebuild done: %d rebuilds, generation %q (was %q)", st.Rebuilds, p.Generation, old)
			}
			break
		}
		for _, id := range sample {
			err := w.checkApp(r, id)
			switch {
			case rebuilding && err != nil:
				t.Fatalf("read while Redis is rebuilt (%d reads after the rebuild started): %v", during, err)
			case rebuilding:
				during++
			default:
				unnoticed++
				if err != nil {
					wrongUnnoticed++
				}
			}
		}
	}
	if during == 0 {
		t.Fatalf("no read while the rebuild ran")
	}
	t.Logf("rebuild noticed %s after the restart; %d of %d reads wrong before that, %d right reads during the rebuild",
		noticedAfter.Round(time.Millisecond), wrongUnnoticed, unnoticed, during)

	gen := drillProjection(t, r.status(), "redis").Generation
	after := onlyGeneration(t, redisState(t, s), gen)
	if d := testenv.DiffDumps(before, after); d != "" {
		t.Fatalf("redis after the rebuild differs from before the restart:\n%s", d)
	}
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
	if st := r.status(); st.Rebuilds != 1 {
		t.Errorf("status counts %d rebuilds, want 1", st.Rebuilds)
	}
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `evflow_projection_rebuilds_total{projection="redis"} 1`; !strings.Contains(string(metrics), want) {
		t.Errorf("GET /metrics (%s) lacks %s", resp.Status, want)
	}

	// A restarted replica opens the rebuilt generation and reapplies nothing.
	r.stop()
	r = s.start(t)
	r.caughtUp()
	st := r.status()
	if p := drillProjection(t, st, "redis"); p.Generation != gen || p.Rebuilding || p.Applied != 0 || st.Rebuilds != 0 {
		t.Fatalf("redis after a restart: %+v, %d rebuilds; want generation %q complete, nothing applied", p, st.Rebuilds, gen)
	}
}

// TestDrillRedisLostWhileReplicaDownRebuildsAtStart: the whole host
// restarts; Redis comes back empty before the replica starts. The replica
// rebuilds it at start, answering from MongoDB meanwhile.
func TestDrillRedisLostWhileReplicaDownRebuildsAtStart(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(12)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 1500)
	r.caughtUp()
	before := onlyGeneration(t, redisState(t, s), "")
	r.stop()
	s.redis.Restart()

	r = s.start(t)
	if p := drillProjection(t, r.status(), "redis"); !p.Rebuilding || p.Generation == "" {
		t.Fatalf("redis at start after the data loss: %+v; want a new generation being rebuilt", p)
	}
	if err := w.check(r); err != nil {
		t.Fatalf("read while rebuilding: %v", err)
	}
	gen := r.waitRebuilt("")
	after := onlyGeneration(t, redisState(t, s), gen)
	if d := testenv.DiffDumps(before, after); d != "" {
		t.Fatalf("redis after the rebuild differs from before the data loss:\n%s", d)
	}
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
}

// TestDrillRedisRecordLostReadsNeverSeeTheEmptyGeneration: the Redis
// record alone is lost (evicted, deleted), the data is intact. The
// replicas then rebuild in a new generation, answering from MongoDB
// meanwhile; no read may be answered from the new, empty generation.
func TestDrillRedisRecordLostReadsNeverSeeTheEmptyGeneration(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(12)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 600)
	w.settled(t, r)
	before := onlyGeneration(t, redisState(t, s), "")
	rd := startDrillReaders(r, w, w.apps)
	time.Sleep(100 * time.Millisecond)
	rc := drillRedis(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rc.Do(ctx, rc.B().Del().Key("evflow:generation:redis").Build()).Error(); err != nil {
		t.Fatalf("del record: %v", err)
	}
	gen := r.waitRebuilt("")
	reads, wrong := rd.done()
	if len(wrong) > 0 {
		t.Errorf("%d of %d reads wrong while the replica switched to the rebuilt generation %s, first: %v",
			len(wrong), reads, gen, wrong[:min(3, len(wrong))])
	}
	state := oldGenerationRemoved(t, s)
	if len(state) != 1 {
		t.Errorf("redis holds %d generations after the rebuild, want only %q: the generation applied before (%d keys of %q) was not removed",
			len(state), gen, len(state[""]), "")
	}
	if d := testenv.DiffDumps(before, state[gen]); d != "" {
		t.Errorf("rebuilt generation differs from the one it replaced:\n%s", d)
	}
}

// TestDrillRedisRestartUnderTrafficLeavesNoOldGeneration: Redis restarts
// without persistence while launches flow. Until a replica notices, its
// runner writes the new launches into the old generation's key space of
// the empty Redis; the rebuilt generation must hold everything, and the
// old generation must not linger.
func TestDrillRedisRestartUnderTrafficLeavesNoOldGeneration(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(12)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 600)
	r.caughtUp()
	w.launch(t, r, 60)
	// Restart just after the replica read the records: it notices about a
	// second later, while launches go on.
	rc := drillRedis(t, s)
	calls := hgetallCalls(t, rc)
	testenv.WaitEvery(t, 3*time.Second, time.Millisecond, func() error {
		if hgetallCalls(t, rc) == calls {
			return errors.New("the replica has not read the records")
		}
		return nil
	})
	s.redis.Restart()
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		w.launch(t, r, 20)
	}
	gen := r.waitRebuilt("")
	w.settled(t, r)
	state := oldGenerationRemoved(t, s)
	if old := state[""]; len(state) != 1 || old != nil {
		var sample []string
		for k, v := range old {
			if len(sample) < 3 {
				sample = append(sample, k+" = "+v)
			}
		}
		slices.Sort(sample)
		t.Fatalf("after the rebuild into %s, the old generation still holds %d keys, e.g. %v", gen, len(old), sample)
	}
}
