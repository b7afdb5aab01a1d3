package main

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

const workloadDay = "2026-11-20"

// lifecycleEvery: one app in this many goes through a whole lifecycle
// (submit, review, release, a second release, some rolled back).
const lifecycleEvery = 10

// workload is a deterministic mix of lifecycle commands and launches, with
// the projections it must produce, computed here and nowhere else.
type workload struct {
	apps     []string
	commands map[string][]map[string]any // per app, in order
	launches [][]map[string]any          // batches
	// expected results
	release  map[string]string
	approved map[string][]string
	count    map[string]int64
	devices  map[string]map[string]bool
}

func newWorkload(apps, launches, batch int, seed uint64) *workload {
	w := &workload{commands: map[string][]map[string]any{}, release: map[string]string{},
		approved: map[string][]string{}, count: map[string]int64{}, devices: map[string]map[string]bool{}}
	for i := range apps {
		id := fmt.Sprintf("app-%03d", i)
		w.apps = append(w.apps, id)
		org := fmt.Sprintf("org-%d", i%10)
		step := 0
		c := func(typ string, kv ...string) {
			m := map[string]any{"id": fmt.Sprintf("c-%s-%d", id, step), "type": typ, "tenant": org, "app_id": id}
			for j := 0; j+1 < len(kv); j += 2 {
				m[kv[j]] = kv[j+1]
			}
			step++
			w.commands[id] = append(w.commands[id], m)
		}
		c("app.create", "name", "App "+id)
		w.release[id], w.approved[id] = "", nil
		if i%lifecycleEvery != 0 {
			continue // created only: FerretDB cannot take a full lifecycle for every app in CI time
		}
		c("app.submit_version", "version", "1.0.0")
		c("app.approve_version", "version", "1.0.0")
		c("app.publish_release", "version", "1.0.0")
		w.release[id], w.approved[id] = "1.0.0", []string{"1.0.0"}
		if i%(2*lifecycleEvery) == 0 {
			c("app.submit_version", "version", "2.0.0")
			c("app.approve_version", "version", "2.0.0")
			c("app.publish_release", "version", "2.0.0")
			w.release[id], w.approved[id] = "2.0.0", []string{"1.0.0", "2.0.0"}
			if i%(4*lifecycleEvery) == 0 {
				c("app.rollback_release")
				w.release[id] = "1.0.0"
			}
		}
	}
	r := rand.New(rand.NewPCG(seed, seed))
	var cur []map[string]any
	for k := range launches {
		app := w.apps[r.IntN(r.IntN(apps)+1)] // skewed: low ids launch more
		dev := fmt.Sprintf("dev-%d", r.IntN(3000))
		cur = append(cur, map[string]any{"id": fmt.Sprintf("w-%d", k), "app_id": app, "version": "1.0.0",
			"device_id": dev, "org": "org-0", "at": workloadDay + "T10:00:00Z"})
		w.count[app]++
		if w.devices[app] == nil {
			w.devices[app] = map[string]bool{}
		}
		w.devices[app][dev] = true
		if len(cur) == batch {
			w.launches = append(w.launches, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		w.launches = append(w.launches, cur)
	}
	return w
}

// events is how many events the workload puts on the stream.
func (w *workload) events() int {
	n := 0
	for _, cs := range w.commands {
		n += len(cs)
	}
	for _, b := range w.launches {
		n += len(b)
	}
	return n
}

// top is the expected top n apps: most launches first, ties by id.
func (w *workload) top(n int) []string {
	ids := make([]string, 0, len(w.count))
	for id := range w.count {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if w.count[ids[i]] != w.count[ids[j]] {
			return w.count[ids[i]] > w.count[ids[j]]
		}
		return ids[i] < ids[j]
	})
	var out []string
	for _, id := range ids[:min(n, len(ids))] {
		out = append(out, fmt.Sprintf("%s=%d", id, w.count[id]))
	}
	return out
}
