package projector

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/projections"
)

// LetterStore lists and removes parked letters.
type LetterStore interface {
	// List returns the letters of projection, in the order they were parked.
	List(ctx context.Context, projection string) ([]bus.Letter, error)
	// Delete removes the letter at seq on the dead-letter stream.
	Delete(ctx context.Context, seq uint64) error
}

// RedriveResult says what a redrive did.
type RedriveResult struct {
	Projection string `json:"projection"`
	// Redriven letters were applied and removed.
	Redriven int `json:"redriven"`
	// Kept letters are still parked: their event, or an earlier one of
	// their aggregate, failed again.
	Kept int `json:"kept"`
	// Errors say why, one per aggregate that failed.
	Errors []string `json:"errors,omitempty"`
}

// Redrive applies the runner's parked letters again, in stream order,
// each on its own, and removes each one applied. When one fails, the later
// letters of its aggregate are kept, to keep its order. Applying is
// idempotent (every write is conditional on the event's position), so a
// letter applied but not yet removed when a redrive is cut short is a no-op
// the next time; a letter parked twice is applied once.
//
// Only letters at or below their partition's stored checkpoint are
// redriven: applying one saves its position as the checkpoint, which must
// not pass events of the partition the live worker has not applied yet.
// Letters above it (and later ones of their aggregate) wait for the next
// redrive, as do letters parked while a redrive runs.
func (r *Runner) Redrive(ctx context.Context, store LetterStore) (RedriveResult, error) {
	// One projector throughout: no Switch to another generation while
	// letters are checked against its checkpoints and applied to it.
	r.switching.RLock()
	defer r.switching.RUnlock()
	res := RedriveResult{Projection: r.name}
	letters, err := store.List(ctx, r.name)
	if err != nil {
		return res, fmt.Errorf("redrive %s: %w", r.name, err)
	}
	// Parking order is not stream order: a batch parks what it cannot
	// decode before what fails to apply.
	slices.SortStableFunc(letters, func(a, b bus.Letter) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Position, b.Position))
	})
	checkpoints := map[int]uint64{}
	failed := map[string]bool{}
	var done bus.Letter
	for i, l := range letters {
		agg := l.Aggregate()
		if failed[agg] {
			res.Kept++
			continue
		}
		cp, ok := checkpoints[l.Partition]
		if !ok {
			if cp, err = r.projector().Checkpoint(ctx, l.Partition); err != nil {
				return res, fmt.Errorf("redrive %s: %w", r.name, err)
			}
			checkpoints[l.Partition] = cp
		}
		switch {
		case l.Position > cp:
			err = fmt.Errorf("above the checkpoint %d of partition %d: the partition is still being applied", cp, l.Partition)
		case i > 0 && done.Partition == l.Partition && done.Position == l.Position:
			err = nil // parked twice: applied already
		default:
			err = r.applyLetter(ctx, l)
		}
		if err != nil {
			failed[agg] = true
			res.Kept++
			res.Errors = append(res.Errors, fmt.Sprintf("%s at position %d: %v", agg, l.Position, err))
			continue
		}
		if err := store.Delete(ctx, l.Seq); err != nil {
			return res, fmt.Errorf("redrive %s: %w", r.name, err)
		}
		done = l
		res.Redriven++
	}
	r.log.Info("dead letters redriven", "redriven", res.Redriven, "kept", res.Kept)
	return res, nil
}

// applyLetter decodes and applies one letter, once.
func (r *Runner) applyLetter(ctx context.Context, l bus.Letter) error {
	rec, err := bus.FromMessage(l.Message())
	if err != nil {
		return err
	}
	payload, err := r.cfg.Registry.Decode(rec.Envelope)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, r.cfg.ApplyTimeout)
	defer cancel()
	return r.projector().Apply(actx, l.Partition, []projections.Event{{Record: rec, Payload: payload}})
}
