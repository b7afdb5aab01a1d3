package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/projections"
)

// run drives a workload through the live replicas: lifecycle commands on
// 10 workers (in order per app), launch batches on 4, calling midway once
// half the launch batches are acknowledged.
func (c *cluster) run(ctx context.Context, w *workload, midway func()) {
	var wg sync.WaitGroup
	apps := make(chan string)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range apps {
				for _, cmd := range w.commands[id] {
					if code, body := c.send(ctx, "/v1/commands", cmd); code != http.StatusOK {
						c.t.Errorf("command %v: %d %s", cmd, code, body)
						return
					}
				}
			}
		}()
	}
	batches := make(chan []map[string]any)
	var sent atomic.Int64
	var once sync.Once
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if code, body := c.send(ctx, "/v1/launches", map[string]any{"launches": b}); code != http.StatusAccepted {
					c.t.Errorf("launches: %d %s", code, body)
					return
				}
				if sent.Add(1) == int64(len(w.launches)/2) {
					once.Do(midway)
				}
			}
		}()
	}
	go func() {
		for _, id := range w.apps {
			apps <- id
		}
		close(apps)
	}()
	for _, b := range w.launches {
		batches <- b
	}
	close(batches)
	wg.Wait()
}

// sampleMonotonic polls some apps while the workload runs and fails the
// test if any app's state ever goes back to an earlier position.
func (c *cluster) sampleMonotonic(ctx context.Context, apps []string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := map[string]int64{}
		for ctx.Err() == nil {
			for _, id := range apps {
				live := c.live()
				if len(live) == 0 {
					return
				}
				var a projections.App
				if code, err := get(live[0], "/v1/apps/"+id, &a); err != nil || code != http.StatusOK {
					continue
				}
				if a.Position < last[id] {
					c.t.Errorf("app %s went back from position %d to %d", id, last[id], a.Position)
				}
				last[id] = a.Position
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// verify checks every projection against the workload's own expectations.
func (c *cluster) verify(w *workload) {
	c.t.Helper()
	p := c.live()[0]
	hll := c.expectedHLL(w)
	for _, id := range w.apps {
		var a projections.App
		if code, err := get(p, "/v1/apps/"+id, &a); err != nil || code != http.StatusOK {
			c.t.Fatalf("app %s: %d %v", id, code, err)
		}
		var approved []string
		for _, v := range a.Versions {
			if v.Status == projections.VersionApproved {
				approved = append(approved, v.Version)
			}
		}
		if a.Release != w.release[id] || !slices.Equal(approved, w.approved[id]) {
			c.t.Errorf("mongo app %s: release %q approved %v, want %q %v", id, a.Release, approved, w.release[id], w.approved[id])
		}
		var rel httpapi.Release
		code, err := get(p, "/v1/apps/"+id+"/release", &rel)
		if w.release[id] == "" && code == http.StatusNotFound {
			code, rel.Version = http.StatusOK, "" // no release, as expected
		}
		if err != nil || code != http.StatusOK || rel.Version != w.release[id] {
			c.t.Errorf("redis release of %s: %q (%d %v), want %q", id, rel.Version, code, err, w.release[id])
		}
		var st httpapi.Stats
		if _, err := get(p, "/v1/apps/"+id+"/stats?day="+workloadDay, &st); err != nil {
			c.t.Fatalf("stats %s: %v", id, err)
		}
		if st.Launches != w.count[id] || st.StoredLaunches != w.count[id] || st.UniqueDevices != hll[id] {
			c.t.Errorf("stats of %s: %d launches (%d stored), %d devices; want %d and %d", id, st.Launches, st.StoredLaunches, st.UniqueDevices, w.count[id], hll[id])
		}
	}
	var top httpapi.Top
	if _, err := get(p, "/v1/top?n=10&day="+workloadDay, &top); err != nil {
		c.t.Fatalf("top: %v", err)
	}
	var got []string
	for _, a := range top.Apps {
		got = append(got, fmt.Sprintf("%s=%d", a.AppID, a.Launches))
	}
	if want := w.top(10); !slices.Equal(got, want) {
		c.t.Errorf("top apps %v, want %v", got, want)
	}
}

// expectedHLL is what a HyperLogLog of each app's expected devices counts,
// built on the same redis-server in scratch keys (registers depend only on
// the set, not on order or duplicates).
func (c *cluster) expectedHLL(w *workload) map[string]int64 {
	c.t.Helper()
	ctx := context.Background()
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{c.redis.Addr}, DisableCache: true})
	if err != nil {
		c.t.Fatalf("redis: %v", err)
	}
	defer rc.Close()
	out := map[string]int64{}
	for id, devs := range w.devices {
		key := "scratch:hll:" + id
		var members []string
		for d := range devs {
			members = append(members, d)
		}
		if err := rc.Do(ctx, rc.B().Pfadd().Key(key).Element(members...).Build()).Error(); err != nil {
			c.t.Fatalf("pfadd: %v", err)
		}
		n, err := rc.Do(ctx, rc.B().Pfcount().Key(key).Build()).AsInt64()
		if err != nil {
			c.t.Fatalf("pfcount: %v", err)
		}
		out[id] = n
	}
	return out
}

func TestKillReplicaMidWorkloadLosesAndDoublesNothing(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"r1", "r2", "r3"} {
		c.start(id)
	}
	c.owners(10 * time.Second)
	w := newWorkload(500, 50000, 250, 1) // 50,738 events
	takeover := c.killMidWorkload(w, 5*time.Second)
	t.Logf("kill -9: survivors took every partition %s after the kill (lease TTL 3s); %d events", takeover, w.events())
}

func TestKillReplicaMidWorkloadOnKafkaLosesAndDoublesNothing(t *testing.T) {
	c := newKafkaCluster(t)
	for _, id := range []string{"r1", "r2", "r3"} {
		c.start(id)
	}
	c.owners(20 * time.Second)
	w := newWorkload(200, 20000, 100, 1)
	takeover := c.killMidWorkload(w, 8*time.Second)
	t.Logf("kill -9 on Kafka: survivors were assigned every partition %s after the kill (session timeout 3s); %d events", takeover, w.events())
}

// killMidWorkload runs w, kills one replica with kill -9 halfway through,
// checks that the stream holds every event once and every projection
// equals the workload's own expectation, that no sampled app ever went
// back, and that the survivors took over within bound. It returns the
// takeover time: from the kill to the last partition taken, by the
// survivors' logs.
func (c *cluster) killMidWorkload(w *workload, bound time.Duration) time.Duration {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var sampled []string // apps with a lifecycle, whose state moves
	for i := 0; i < len(w.apps); i += lifecycleEvery {
		sampled = append(sampled, w.apps[i])
	}
	stopSampling := c.sampleMonotonic(ctx, sampled)
	var killedAt time.Time
	c.run(ctx, w, func() {
		victim := c.live()[1]
		killedAt = time.Now()
		c.kill(victim, syscall.SIGKILL)
		c.owners(bound + 10*time.Second)
	})
	stopSampling()
	if killedAt.IsZero() {
		t.Fatal("the workload's midway step (kill -9) did not run")
	}
	tookAt, ok := lastLoggedAfter(t, c.live(), c.tookLog, killedAt)
	if !ok {
		t.Fatal("no survivor logged taking a partition after the kill")
	}
	takeover := tookAt.Sub(killedAt)
	if takeover > bound {
		t.Errorf("takeover after kill -9 took %s, want at most %s", takeover, bound)
	}
	st := c.caughtUp(3 * time.Minute)
	if st.StreamMessages != uint64(w.events()) {
		t.Errorf("stream holds %d events, want %d: a retry was stored twice or an event lost", st.StreamMessages, w.events())
	}
	c.verify(w)
	return takeover
}
