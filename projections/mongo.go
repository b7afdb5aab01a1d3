package projections

import (
	"context"
	"fmt"

	"github.com/evflow/evflow/events"
)

// MongoName is the durable name of the MongoDB projection (apps and daily
// stats); its checkpoints are stored under it.
const MongoName = "mongo"

// AppWrite is an app document to store on condition that the stored
// document's position is still Prev (0: no document yet).
type AppWrite struct {
	App  App
	Prev int64
}

// DocStore is what the MongoDB projection needs from its store.
type DocStore interface {
	// LoadApps returns the stored apps among ids; missing ones are absent.
	LoadApps(ctx context.Context, ids []string) (map[string]App, error)
	// SaveApps performs each write conditionally and returns the ids whose
	// condition failed (another writer moved the document on).
	SaveApps(ctx context.Context, writes []AppWrite) (lost []string, err error)
	// AddDailyLaunches adds each group to its (app, day) counter, counting
	// only the positions above the one stored with the counter.
	AddDailyLaunches(ctx context.Context, groups []LaunchGroup) error
	Checkpoints
}

// maxRefolds bounds how often a batch re-reads apps that another writer
// (a replica losing its lease, a replay) changed under it.
const maxRefolds = 5

// Mongo projects app events into the `apps` collection and launches into
// daily stats. It folds app events in memory from the stored document and
// writes each document once per batch, conditional on the position it read.
type Mongo struct {
	store DocStore
}

// NewMongo returns the MongoDB projection over store.
func NewMongo(store DocStore) *Mongo { return &Mongo{store: store} }

// Name implements [Projector].
func (m *Mongo) Name() string { return MongoName }

// Checkpoint implements [Projector].
func (m *Mongo) Checkpoint(ctx context.Context, partition int) (uint64, error) {
	return m.store.Checkpoint(ctx, MongoName, partition)
}

// Apply implements [Projector].
func (m *Mongo) Apply(ctx context.Context, partition int, batch []Event) error {
	if len(batch) == 0 {
		return nil
	}
	if err := m.applyApps(ctx, batch); err != nil {
		return err
	}
	if groups := GroupLaunches(batch); len(groups) > 0 {
		if err := m.store.AddDailyLaunches(ctx, groups); err != nil {
			return fmt.Errorf("mongo projection: daily launches: %w", err)
		}
	}
	last := batch[len(batch)-1].Position
	if err := m.store.SaveCheckpoint(ctx, MongoName, partition, last); err != nil {
		return fmt.Errorf("mongo projection: checkpoint %d@%d: %w", partition, last, err)
	}
	return nil
}

func (m *Mongo) applyApps(ctx context.Context, batch []Event) error {
	pending := appIDs(batch)
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == maxRefolds {
			return fmt.Errorf("mongo projection: apps %v: %w", pending, events.ErrConflict)
		}
		stored, err := m.store.LoadApps(ctx, pending)
		if err != nil {
			return fmt.Errorf("mongo projection: load apps: %w", err)
		}
		writes := fold(stored, pending, batch)
		if len(writes) == 0 {
			return nil
		}
		if pending, err = m.store.SaveApps(ctx, writes); err != nil {
			return fmt.Errorf("mongo projection: save apps: %w", err)
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
