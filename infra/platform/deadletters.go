package platform

import (
	"context"
	"fmt"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/projector"
)

// deadLetters is the replica's side of the dead-letter API: reads and
// removals go to the stream, redrives through this replica's projections.
type deadLetters struct {
	letterStore
	runners runnerSet
}

// Redrive redrives the letters of projection ("" for every projection).
func (d deadLetters) Redrive(ctx context.Context, projection string) (any, error) {
	var out []projector.RedriveResult
	found := false
	for _, r := range d.runners {
		if projection != "" && r.Name() != projection {
			continue
		}
		found = true
		res, err := r.Redrive(ctx, d.letterStore)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	if !found {
		return nil, &handlers.ValidationError{Field: "projection", Reason: fmt.Sprintf("no projection %q", projection)}
	}
	return out, nil
}
