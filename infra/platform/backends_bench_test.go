package platform_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus/bustest"
	"github.com/evflow/evflow/projections"
)

// BenchmarkBackendsSameWorkload publishes the same launches through a
// replica on each bus (JetStream embedded, Kafka on kfake) and reports the
// acknowledged publish rate and the rate at which the replica's Redis
// projection applied them (its three projections run, as in production;
// the MongoDB ones on FerretDB compete for the CPU on both buses alike).
//
//	go test -run '^$' -bench BackendsSameWorkload -benchtime 1x ./infra/platform
func BenchmarkBackendsSameWorkload(b *testing.B) {
	const total, batch, writers = 50_000, 500, 8
	for b.Loop() {
		onEachBus(b, func(b *testing.B, s *stand) {
			r := s.start(b)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			began := time.Now()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for from := w * batch; from < total; from += writers * batch {
						envs := make([]events.Envelope, 0, batch)
						for i := from; i < from+batch; i++ {
							envs = append(envs, bustest.Launch(fmt.Sprintf("bench-%d", i), fmt.Sprintf("app%d", i%50), i%1000))
						}
						if _, err := r.r.Bus.Appender.Append(ctx, nil, envs...); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			published := time.Since(began)
			heads, err := r.r.Bus.Log.Heads(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, run := range r.r.Runners {
				if run.Name() != projections.RedisName {
					continue
				}
				for p, h := range heads {
					for run.Position(p) < h {
						if ctx.Err() != nil {
							b.Fatalf("redis projection stuck at %d of %d on partition %d", run.Position(p), h, p)
						}
						time.Sleep(5 * time.Millisecond)
					}
				}
			}
			projected := time.Since(began)
			b.Logf("%s: %d launches, publish %.0f/s acknowledged, Redis projection %.0f/s end to end",
				s.cfg.Bus, total, float64(total)/published.Seconds(), float64(total)/projected.Seconds())
		})
	}
}
