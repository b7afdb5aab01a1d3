package platform

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/fx"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/projector"
)

// Bus is the replica's connection to the event log, whichever backend
// carries it (JetStream or Kafka).
type Bus struct {
	// Kind is config.BusJetStream or config.BusKafka; URL says where the
	// log is, credentials removed.
	Kind, URL string
	// Topic is the partitioned topic of the events; Publisher writes to it
	// (bus.ToMessage's messages), Appender through it.
	Topic     string
	Publisher message.Publisher
	Appender  *bus.Appender
	Heads     handlers.Heads
	Log       bus.Log
	// DeadLetters keeps the events projections could not apply.
	DeadLetters letterStore
	// NewSubscriber subscribes projection runners to partitions.
	NewSubscriber projector.NewSubscriber
	// newOwner returns the partition ownership of a replica's runners.
	newOwner func(runners runnerSet) (Ownership, error)
	// ready reports whether the log answers.
	ready func(ctx context.Context) error
}

// letterStore is where dead letters are parked, listed and redriven.
type letterStore interface {
	projector.DeadLetterBox
	projector.LetterStore
	Get(ctx context.Context, seq uint64) (bus.Letter, error)
	Purge(ctx context.Context, projection string) (uint64, error)
	Count(ctx context.Context, projection string) (uint64, error)
}

// Ownership decides which partitions the replica consumes.
type Ownership interface {
	// Start takes part; Stop drains and hands over the partitions.
	Start() error
	Stop(ctx context.Context)
	Replica() string
	Owned() []int
	Takeovers() uint64
}

func newBus(lc fx.Lifecycle, cfg config.Config, log *slog.Logger, d *Docs, h *Hot) (*Bus, error) {
	switch cfg.Bus {
	case config.BusKafka:
		return newKafkaBus(lc, cfg, log, d, h)
	case config.BusJetStream:
		return newJetStreamBus(lc, cfg, log)
	}
	return nil, fmt.Errorf("--bus %q is not jetstream or kafka", cfg.Bus)
}
