package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/handlers"
)

// The launches the measurements publish.
const (
	// backlogApps is how many apps the Redis measurements' launches are
	// spread over, evenly (as in infra/replay's benchmark).
	backlogApps = 200
	// launchDevices is how many devices launch them.
	launchDevices = 20_000
	// launchBatch is the SDK's batch size: the most one Ingest accepts.
	launchBatch = handlers.DefaultMaxLaunchBatch
	// publishInflight is how many batches the publishers keep in flight
	// (one per goroutine): 4 × 1,000 launches is the JetStream client's
	// default limit of 4,000 unacknowledged async publishes.
	publishInflight = 4
)

// launchGen makes the launches of one measurement: launch i is of app
// i mod apps, by one of launchDevices devices, on the current UTC day; its
// id is UUID-shaped, as an SDK's would be. An app.launched envelope of
// these is 310-330 bytes of JSON.
type launchGen struct {
	run  uint32 // distinguishes the ids of different measurements
	apps int
	day  time.Time
}

func (e *evEnv) launchGen(run string, apps int) launchGen {
	h := fnv.New32a()
	h.Write([]byte(run))
	return launchGen{run: h.Sum32(), apps: apps, day: time.Now().UTC().Truncate(24 * time.Hour)}
}

// app is the id of app a.
func (g launchGen) app(a int) string { return fmt.Sprintf("app-%04d", a) }

// dayKey is the day the launches count towards.
func (g launchGen) dayKey() string { return g.day.Format(events.DayLayout) }

// launch is launch i, launched at at.
func (g launchGen) launch(i int, at time.Time) handlers.Launch {
	a := i % g.apps
	return handlers.Launch{
		ID:       fmt.Sprintf("%08x-0000-4000-8000-%012x", g.run, i),
		AppID:    g.app(a),
		Version:  "3.12.0",
		DeviceID: fmt.Sprintf("device-%06d", (i*7919)%launchDevices),
		Org:      fmt.Sprintf("org-%02d", a%20),
		At:       at,
	}
}

// at spreads launch i over the day (never later than its end, well
// within handlers.MaxLaunchAhead).
func (g launchGen) at(i int) time.Time {
	return g.day.Add(time.Duration(i%86_400) * time.Second)
}

// batches returns launches [from, from+n) in batches of up to size.
func (g launchGen) batches(from, n, size int) [][]handlers.Launch {
	var out [][]handlers.Launch
	for i := from; i < from+n; i += size {
		b := make([]handlers.Launch, 0, min(size, from+n-i))
		for j := i; j < min(i+size, from+n); j++ {
			b = append(b, g.launch(j, g.at(j)))
		}
		out = append(out, b)
	}
	return out
}

// sendLaunches sends a batch and returns how many launches were
// acknowledged: handlers.Ingester.Ingest, or the Go client's Launch.
type sendLaunches func(ctx context.Context, batch []handlers.Launch) (int, error)

// ingest sends batches with inflight goroutines, each with one batch in
// flight at a time, until next returns nil; it returns the launches
// acknowledged (stored by JetStream). next is called concurrently. The
// first failure stops every goroutine and is returned.
func ingest(ctx context.Context, send sendLaunches, inflight int, next func() []handlers.Launch) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var acked atomic.Int64
	var once sync.Once
	var failed error
	var wg sync.WaitGroup
	for range inflight {
		wg.Go(func() {
			for ctx.Err() == nil {
				b := next()
				if b == nil {
					return
				}
				n, err := send(ctx, b)
				if err != nil {
					once.Do(func() { failed = err; cancel() })
					return
				}
				acked.Add(int64(n))
			}
		})
	}
	wg.Wait()
	if failed == nil {
		failed = ctx.Err()
	}
	return int(acked.Load()), failed
}

// fromSlice hands out batches one by one, safely for concurrent callers.
func fromSlice(batches [][]handlers.Launch) func() []handlers.Launch {
	var i atomic.Int64
	return func() []handlers.Launch {
		k := int(i.Add(1)) - 1
		if k >= len(batches) {
			return nil
		}
		return batches[k]
	}
}
