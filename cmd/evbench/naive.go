package main

import "context"

// measureNaive measures the naive Watermill baseline: naive.publish and
// naive.consume.
func measureNaive(ctx context.Context, st *stand, cfg config, r *results) error {
	return nil
}
