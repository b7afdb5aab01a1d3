package main

import "context"

// measureRaw measures the ceilings of the parts alone: raw.publish,
// raw.consume, raw.ordered, raw.redis, raw.latency.p50 and raw.latency.p99.
func measureRaw(ctx context.Context, st *stand, cfg config, r *results) error {
	return nil
}
