package platform

import (
	"context"
	"fmt"

	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/projector"
)

// Status is what GET /v1/status and `evflow status` report.
type Status struct {
	Partitions int `json:"partitions"`
	// StreamMessages and StreamLast describe the event stream.
	StreamMessages uint64             `json:"stream_messages"`
	StreamLast     uint64             `json:"stream_last_position"`
	Projections    []ProjectionStatus `json:"projections"`
}

// ProjectionStatus is one projection's progress on this replica.
type ProjectionStatus struct {
	Name string `json:"name"`
	// Applied counts events applied since start (idempotent no-ops included).
	Applied uint64 `json:"applied"`
	// Skipped counts undecodable events.
	Skipped uint64 `json:"skipped"`
	// Positions is the last position applied per partition since start.
	Positions []uint64 `json:"positions"`
}

func status(ctx context.Context, cfg config.Config, b *Bus, runners []*projector.Runner) (Status, error) {
	info, err := b.Stream.Info(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("stream info: %w", err)
	}
	st := Status{Partitions: cfg.Partitions, StreamMessages: info.State.Msgs, StreamLast: info.State.LastSeq}
	for _, r := range runners {
		ps := ProjectionStatus{Name: r.Name(), Applied: r.Applied(), Skipped: r.Skipped(), Positions: make([]uint64, cfg.Partitions)}
		for p := range ps.Positions {
			ps.Positions[p] = r.Position(p)
		}
		st.Projections = append(st.Projections, ps)
	}
	return st, nil
}
