package projections

import (
	"context"
	"fmt"

	"github.com/evflow/evflow/events"
)

// RedisName is the durable name of the Redis projection (current release,
// launch counters, unique devices, top apps); its checkpoints are stored under it.
const RedisName = "redis"

// ReleaseChange sets an app's current release ("" for none) if Position is
// above the position stored with it.
type ReleaseChange struct {
	AppID    string
	Version  string
	Position uint64
}

// HotStore is what the Redis projection needs from its store.
type HotStore interface {
	// ApplyHot applies release changes and launch groups, each write
	// conditional on its position, in as few round trips as it can.
	ApplyHot(ctx context.Context, releases []ReleaseChange, launches []LaunchGroup) error
	Checkpoints
}

// Redis projects the hot path into Redis.
type Redis struct {
	store HotStore
}

// NewRedis returns the Redis projection over store.
func NewRedis(store HotStore) *Redis { return &Redis{store: store} }

// Name implements [Projector].
func (r *Redis) Name() string { return RedisName }

// Checkpoint implements [Projector].
func (r *Redis) Checkpoint(ctx context.Context, partition int) (uint64, error) {
	return r.store.Checkpoint(ctx, RedisName, partition)
}

// Apply implements [Projector].
func (r *Redis) Apply(ctx context.Context, partition int, batch []Event) error {
	if len(batch) == 0 {
		return nil
	}
	releases, launches := ReleaseChanges(batch), GroupLaunches(batch)
	if len(releases) > 0 || len(launches) > 0 {
		if err := r.store.ApplyHot(ctx, releases, launches); err != nil {
			return fmt.Errorf("redis projection: %w", err)
		}
	}
	return saveCheckpoint(ctx, r.store, RedisName, partition, batch)
}

// ReleaseChanges returns, per app, the last release change in the batch:
// setting a value is idempotent, so only the last one matters.
func ReleaseChanges(batch []Event) []ReleaseChange {
	var out []ReleaseChange
	index := map[string]int{}
	for _, e := range batch {
		var version string
		switch d := e.Payload.(type) {
		case *events.ReleasePublished:
			version = d.Version
		case *events.ReleaseRolledBack:
			version = d.To
		default:
			continue
		}
		c := ReleaseChange{AppID: e.AggregateID, Version: version, Position: e.Position}
		if i, ok := index[c.AppID]; ok {
			out[i] = c
			continue
		}
		index[c.AppID] = len(out)
		out = append(out, c)
	}
	return out
}
