// Package projections holds the projector contract and the reference
// domain's projections: the apps read model (also the state commands are
// decided against) and daily launch statistics in MongoDB, and the hot
// path in Redis (current release, launch counters, unique devices, top apps).
//
// Projections are written to narrow store interfaces declared here and
// implemented in infra/mongo and infra/redis. Every write is conditional on
// the stream position of the event (DESIGN.md, invariant 2), so applying a
// batch twice, or a prefix of it again after a crash, changes nothing.
package projections

import (
	"context"

	"github.com/evflow/evflow/events"
)

// Event is a record read from the stream together with its decoded data.
type Event struct {
	events.Record
	// Payload is the decoded Data, a pointer to a type registered in
	// [events.Domain] (for example *events.AppCreated).
	Payload any
}

// Projector applies ordered batches of events, all from one partition.
//
// Apply returns only once the batch's effects and the partition's
// checkpoint are durable in the store. It is idempotent: an event whose
// position is not above what a record already holds changes nothing. An
// error means nothing can be assumed about the batch; the caller retries it.
type Projector interface {
	// Name is the projection's durable name: checkpoints are stored under it.
	Name() string
	// Apply applies batch, then records its last position as the partition's checkpoint.
	Apply(ctx context.Context, partition int, batch []Event) error
	// Checkpoint returns the position of the last event applied on partition
	// (0 when none), the point from which consumption resumes.
	Checkpoint(ctx context.Context, partition int) (uint64, error)
}

// Checkpoints stores, per projection and partition, the position of the last
// applied batch. SaveCheckpoint never moves a checkpoint backwards.
type Checkpoints interface {
	Checkpoint(ctx context.Context, projection string, partition int) (uint64, error)
	SaveCheckpoint(ctx context.Context, projection string, partition int, pos uint64) error
}
