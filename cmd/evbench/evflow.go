package main

import "context"

// measureEvflow measures evflow itself: evflow.publish, evflow.drain,
// evflow.live, evflow.latency.p50, evflow.latency.p99,
// evflow.mongo.per_trip and evflow.replay.
func measureEvflow(ctx context.Context, st *stand, cfg config, r *results) error {
	return nil
}
