package projector

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/projections"
)

// Observer watches a [Runner] work, for metrics and traces; set it in
// [Config.Observer]. A runner calls it from its partitions' workers,
// concurrently, on the hot path: its methods must be quick and must not
// block. The runner's own counters ([Runner.Applied], [Runner.Parked],
// [Runner.Skipped]) are kept whether or not there is an observer.
//
// For each batch a worker takes, StartBatch is called first, then
// ApplyFailed and Parked any number of times, then EndBatch exactly once.
// They all get the context StartBatch returned.
type Observer interface {
	// StartBatch is called when a batch of messages was gathered, before
	// it is decoded and applied. The context it returns is the one the
	// batch is decoded, parked and applied under (an observer puts a span
	// there), derived from ctx.
	StartBatch(ctx context.Context, b *Batch) context.Context
	// ApplyFailed is called when an attempt to apply events of the batch
	// (all of them, or one on its own) failed with err; it is retried or,
	// at last, parked.
	ApplyFailed(ctx context.Context, b *Batch, events []projections.Event, err error)
	// Parked is called once event l of the batch is stored as a dead letter.
	Parked(ctx context.Context, b *Batch, l bus.Letter)
	// EndBatch is called when the batch is done with: applied and
	// acknowledged when applied is true; otherwise abandoned, because ctx
	// ended or its partition was drained, to be applied again by whoever
	// consumes the partition next. took is the time since StartBatch,
	// retries included.
	EndBatch(ctx context.Context, b *Batch, applied bool, took time.Duration)
}

// Batch is what an [Observer] is told of a batch. The observer must not
// keep it, or what it refers to, after EndBatch, nor change it.
type Batch struct {
	// Projection and Partition say whose batch it is.
	Projection string
	Partition  int
	// Messages are the messages gathered, in stream order; their metadata
	// carries what the publisher set (a trace context, say).
	Messages []*message.Message
	// Events counts the events decoded for applying (duplicates of
	// events already applied are dropped), Parked those of them parked as
	// dead letters; both are set once the batch is decoded.
	Events, Parked int
}

// nopObserver is the [Observer] of a runner without one.
type nopObserver struct{}

func (nopObserver) StartBatch(ctx context.Context, _ *Batch) context.Context { return ctx }

func (nopObserver) ApplyFailed(context.Context, *Batch, []projections.Event, error) {}

func (nopObserver) Parked(context.Context, *Batch, bus.Letter) {}

func (nopObserver) EndBatch(context.Context, *Batch, bool, time.Duration) {}

// eventAttrs are the log attributes of evs when they are one event: its
// id and correlation id, so that a failure can be followed to the command
// that caused it.
func eventAttrs(evs []projections.Event) []any {
	if len(evs) != 1 {
		return nil
	}
	return []any{"event_id", evs[0].ID, "correlation_id", evs[0].CorrelationID}
}
