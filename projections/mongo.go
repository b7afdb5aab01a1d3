package projections

import (
	"context"
	"fmt"

	"github.com/evflow/evflow/events"
)

// Durable names of the MongoDB projections; their checkpoints are stored
// under them. They are separate so that a backlog of launches never delays
// the apps read model, which commands are decided against.
const (
	AppsName       = "apps"
	DailyStatsName = "daily_stats"
)

// AppWrite is an app document to store on condition that the stored
// document's position is still Prev (0: no document yet).
type AppWrite struct {
	App  App
	Prev int64
}

// AppStore is what the apps projection needs from its store.
type AppStore interface {
	// LoadApps returns the stored apps among ids; missing ones are absent.
	LoadApps(ctx context.Context, ids []string) (map[string]App, error)
	// SaveApps performs each write conditionally and returns the ids whose
	// condition failed (another writer moved the document on).
	SaveApps(ctx context.Context, writes []AppWrite) (lost []string, err error)
	Checkpoints
}

// StatsStore is what the daily stats projection needs from its store.
type StatsStore interface {
	// AddDailyLaunches adds each group to its (app, day) counter, counting
	// only the positions above the one stored with the counter.
	AddDailyLaunches(ctx context.Context, groups []LaunchGroup) error
	Checkpoints
}

// DocStore is a store of both MongoDB projections.
type DocStore interface {
	AppStore
	StatsStore
}

// maxRefolds bounds how often a batch re-reads apps that another writer
// (a replica losing its lease, a replay) changed under it.
const maxRefolds = 5

// Apps projects app events into the `apps` collection. It folds a batch in
// memory from the stored documents and writes each document once,
// conditional on the position it read.
type Apps struct {
	store AppStore
}

// NewApps returns the apps projection over store.
func NewApps(store AppStore) *Apps { return &Apps{store: store} }

// Name implements [Projector].
func (m *Apps) Name() string { return AppsName }

// Checkpoint implements [Projector].
func (m *Apps) Checkpoint(ctx context.Context, partition int) (uint64, error) {
	return m.store.Checkpoint(ctx, AppsName, partition)
}

// Apply implements [Projector].
func (m *Apps) Apply(ctx context.Context, partition int, batch []Event) error {
	if len(batch) == 0 {
		return nil
	}
	if err := m.applyApps(ctx, batch); err != nil {
		return err
	}
	return saveCheckpoint(ctx, m.store, AppsName, partition, batch)
}

// DailyStats projects launches into per-app daily counters.
type DailyStats struct {
	store StatsStore
}

// NewDailyStats returns the daily stats projection over store.
func NewDailyStats(store StatsStore) *DailyStats { return &DailyStats{store: store} }

// Name implements [Projector].
func (m *DailyStats) Name() string { return DailyStatsName }

// Checkpoint implements [Projector].
func (m *DailyStats) Checkpoint(ctx context.Context, partition int) (uint64, error) {
	return m.store.Checkpoint(ctx, DailyStatsName, partition)
}

// Apply implements [Projector].
func (m *DailyStats) Apply(ctx context.Context, partition int, batch []Event) error {
	if len(batch) == 0 {
		return nil
	}
	if groups := GroupLaunches(batch); len(groups) > 0 {
		if err := m.store.AddDailyLaunches(ctx, groups); err != nil {
			return fmt.Errorf("daily stats projection: %w", err)
		}
	}
	return saveCheckpoint(ctx, m.store, DailyStatsName, partition, batch)
}

// saveCheckpoint records the batch's last position as the partition's checkpoint.
func saveCheckpoint(ctx context.Context, c Checkpoints, name string, partition int, batch []Event) error {
	last := batch[len(batch)-1].Position
	if err := c.SaveCheckpoint(ctx, name, partition, last); err != nil {
		return fmt.Errorf("%s projection: checkpoint %d@%d: %w", name, partition, last, err)
	}
	return nil
}

func (m *Apps) applyApps(ctx context.Context, batch []Event) error {
	pending := appIDs(batch)
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == maxRefolds {
			return fmt.Errorf("apps projection: apps %v: %w", pending, events.ErrConflict)
		}
		stored, err := m.store.LoadApps(ctx, pending)
		if err != nil {
			return fmt.Errorf("apps projection: load apps: %w", err)
		}
		writes := fold(stored, pending, batch)
		if len(writes) == 0 {
			return nil
		}
		if pending, err = m.store.SaveApps(ctx, writes); err != nil {
			return fmt.Errorf("apps projection: save apps: %w", err)
		}
	}
	return nil
}

// appIDs lists the app aggregates a batch touches, in order of appearance.
func appIDs(batch []Event) []string {
	var ids []string
	seen := map[string]bool{}
	for _, e := range batch {
		if e.AggregateType == events.AggregateApp && !seen[e.AggregateID] {
			seen[e.AggregateID] = true
			ids = append(ids, e.AggregateID)
		}
	}
	return ids
}

// fold applies the batch's events of the given apps to their stored states
// and returns a write for each app the batch changed.
func fold(stored map[string]App, ids []string, batch []Event) []AppWrite {
	states := make(map[string]*App, len(ids))
	prev := make(map[string]int64, len(ids))
	for _, id := range ids {
		a := stored[id]
		states[id], prev[id] = &a, a.Position
	}
	var writes []AppWrite
	for _, e := range batch {
		if a := states[e.AggregateID]; a != nil && e.AggregateType == events.AggregateApp {
			a.Apply(e)
		}
	}
	for _, id := range ids {
		if a := states[id]; a.Position != prev[id] {
			writes = append(writes, AppWrite{App: *a, Prev: prev[id]})
		}
	}
	return writes
}
