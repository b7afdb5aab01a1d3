package replay

import (
	"context"
	"sync"
	"time"

	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/projections"
)

// checkEvery is how often a rebuild checks whether it caught up with the
// heads it read last; headsEvery is the least time between two reads of
// the heads.
const (
	checkEvery = 5 * time.Millisecond
	headsEvery = 25 * time.Millisecond
)

// build applies the stream to proj, every partition from its checkpoint
// but not before floor, until all have caught up with their heads; then
// it drains the batches in hand and returns the heads caught up with.
func build(ctx context.Context, cfg Config, proj projections.Projector, floor []uint64, began time.Time, sum *Summary) ([]uint64, error) {
	from, err := checkpoints(ctx, proj, cfg.Partitions)
	if err != nil {
		return nil, err
	}
	for p := range from {
		from[p] = max(from[p], floor[p])
	}
	r, err := projector.New(projector.Config{
		Topic: cfg.Topic, Partitions: cfg.Partitions, MaxBatch: cfg.MaxBatch, Linger: cfg.Linger,
		DeadLetters: cfg.DeadLetters, Logger: cfg.Logger,
	}, floored{proj, floor}, cfg.NewSubscriber)
	if err != nil {
		return nil, err
	}
	r.Start(ctx)
	defer r.Stop()
	for p := range cfg.Partitions {
		r.Assign(p)
	}
	// What there is to apply, counted while the runner is at work.
	var total uint64
	for p := range from {
		n, err := cfg.Log.Pending(ctx, p, from[p])
		if err != nil {
			return nil, err
		}
		total += n
	}
	stored, err := cfg.Log.Messages(ctx)
	if err != nil {
		return nil, err
	}
	report := func() {
		done := r.Applied() + r.Parked() + r.Skipped()
		sum.Events = done
		if cfg.Progress != nil {
			cfg.Progress(Progress{Projection: sum.Projection, Done: done, Total: max(total, done), Elapsed: time.Since(began)})
		}
	}
	defer report()

	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	var heads []uint64
	var polled, reported time.Time
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if time.Since(reported) >= cfg.ProgressEvery {
			report()
			reported = time.Now()
		}
		// The heads are read again once a second, or when the runner
		// reached them, but not more than every headsEvery: under
		// traffic it reaches them again and again.
		if since := time.Since(polled); since < headsEvery || since < time.Second && !caughtUp(r, from, heads) {
			continue
		}
		// Fresh heads, and a total grown by what was published since.
		if heads, err = cfg.Log.Heads(ctx); err != nil {
			return nil, err
		}
		polled = time.Now()
		if n, err := cfg.Log.Messages(ctx); err == nil && n > stored {
			total, stored = total+n-stored, n
		}
		if caughtUp(r, from, heads) {
			break
		}
	}
	var wg sync.WaitGroup
	for p := range cfg.Partitions {
		wg.Go(func() { r.Revoke(p) })
	}
	wg.Wait()
	return heads, nil
}

// caughtUp reports whether every partition has reached its head.
func caughtUp(r *projector.Runner, from, heads []uint64) bool {
	if heads == nil {
		return false
	}
	for p, h := range heads {
		if max(r.Position(p), from[p]) < h {
			return false
		}
	}
	return true
}

// floored starts a projection no earlier than after floor: a partition's
// checkpoint is never below its floor.
type floored struct {
	projections.Projector
	floor []uint64
}

func (f floored) Checkpoint(ctx context.Context, partition int) (uint64, error) {
	c, err := f.Projector.Checkpoint(ctx, partition)
	return max(c, f.floor[partition]), err
}
