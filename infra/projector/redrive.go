package projector

import (
	"context"
	"fmt"

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

// Redrive applies the runner's parked letters again, in the order they
// were parked, each on its own, and removes each one applied. When one
// fails, the later letters of its aggregate are kept, to keep its order.
// Applying is idempotent (every write is conditional on the event's
// position), so a letter applied but not yet removed when a redrive is cut
// short is a no-op the next time. Letters that the live worker parks while
// a redrive runs wait for the next redrive.
func (r *Runner) Redrive(ctx context.Context, store LetterStore) (RedriveResult, error) {
	res := RedriveResult{Projection: r.proj.Name()}
	letters, err := store.List(ctx, r.proj.Name())
	if err != nil {
		return res, fmt.Errorf("redrive %s: %w", r.proj.Name(), err)
	}
	failed := map[string]bool{}
	for _, l := range letters {
		agg := l.Aggregate()
		if failed[agg] {
			res.Kept++
			continue
		}
		if err := r.applyLetter(ctx, l); err != nil {
			failed[agg] = true
			res.Kept++
			res.Errors = append(res.Errors, fmt.Sprintf("%s at position %d: %v", agg, l.Position, err))
			continue
		}
		if err := store.Delete(ctx, l.Seq); err != nil {
			return res, fmt.Errorf("redrive %s: %w", r.proj.Name(), err)
		}
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
	return r.proj.Apply(actx, l.Partition, []projections.Event{{Record: rec, Payload: payload}})
}
