package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"
)

// payload is a 256-byte event body.
var payload = func() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

// paced calls send at rate per second for d (or until ctx ends), in
// ticks of 1ms, and returns how many calls were made. send gets the
// intended send time of the call, so latencies include any lag of the
// pacer itself.
func paced(ctx context.Context, rate int, d time.Duration, send func(at time.Time) error) (int, error) {
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case now := <-tick.C:
			elapsed := now.Sub(start)
			if elapsed >= d {
				return sent, nil
			}
			due := int(elapsed.Seconds() * float64(rate))
			for ; sent < due; sent++ {
				at := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
				if err := send(at); err != nil {
					return sent, err
				}
			}
		}
	}
}

// percentiles returns the p-th percentiles (0-100) of ds, in milliseconds.
func percentiles(ds []time.Duration, ps ...float64) ([]float64, error) {
	if len(ds) == 0 {
		return nil, fmt.Errorf("no samples")
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	out := make([]float64, len(ps))
	for i, p := range ps {
		idx := int(p / 100 * float64(len(s)-1))
		out[i] = float64(s[idx]) / float64(time.Millisecond)
	}
	return out, nil
}

// rate is n events over d, per second.
func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// collect runs a garbage collection before a measurement, as testing.B does
// before a benchmark: each figure then starts from a collected heap, not
// from the garbage of the one before (the live run leaves hundreds of MB,
// whose collection would otherwise fall in the next run's latencies).
func collect() { runtime.GC() }
