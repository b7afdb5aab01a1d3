package platform

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/projector"
)

// Status is what GET /v1/status and `evflow status` report.
type Status struct {
	// Replica is this replica's id; Owned the partitions it consumes;
	// Takeovers how many it took from another replica since start.
	Replica   string `json:"replica"`
	Owned     []int  `json:"owned"`
	Takeovers uint64 `json:"takeovers"`
	// Owners maps partitions to the replica that consumes them, as far as
	// this replica knows: its own partitions, and all partitions when its
	// ownership can tell (it has an Owners() map[int]string method). A
	// partition missing here has an owner this replica does not know: run
	// `evflow status --addr` against each replica for the full picture.
	// Replicas older than this field leave it out.
	Owners     map[int]string `json:"owners,omitempty"`
	Partitions int            `json:"partitions"`
	// Bus is the event log's backend: jetstream or kafka.
	Bus string `json:"bus"`
	// StreamMessages and StreamLast (the highest head) describe the event log.
	StreamMessages uint64 `json:"stream_messages"`
	StreamLast     uint64 `json:"stream_last_position"`
	// Heads is the position of the last event of each partition.
	Heads       []uint64           `json:"heads"`
	Projections []ProjectionStatus `json:"projections"`
	// Rebuilds counts the projection rebuilds this replica took part in
	// because a store lost its data (Redis restarted without persistence).
	Rebuilds uint64 `json:"rebuilds"`
}

// ProjectionStatus is one projection's progress on this replica.
type ProjectionStatus struct {
	Name string `json:"name"`
	// Generation is the generation of its store this replica applies
	// ("" for the original one); Rebuilding reports that it is being
	// rebuilt from the stream and is not complete yet.
	Generation string `json:"generation"`
	Rebuilding bool   `json:"rebuilding,omitempty"`
	// Applied counts events applied since start (idempotent no-ops included).
	Applied uint64 `json:"applied"`
	// Skipped counts undecodable events skipped (none when dead letters
	// are kept); Parked counts the events this replica parked as dead
	// letters since start.
	Skipped uint64 `json:"skipped"`
	Parked  uint64 `json:"parked"`
	// DeadLetters is the number of the projection's letters waiting on the
	// dead-letter stream (all replicas').
	DeadLetters uint64 `json:"dead_letters"`
	// Checkpoints is the stored position of the last applied event, per partition.
	Checkpoints []uint64 `json:"checkpoints"`
	// Lag is how many positions each partition's checkpoint trails its head
	// (on JetStream positions are stream-wide, so this bounds the events
	// still to apply; on Kafka it is their count).
	Lag []uint64 `json:"lag"`
	// Error says why the checkpoints could not be read (its store is down);
	// Checkpoints and Lag are then empty.
	Error string `json:"error,omitempty"`
}

func status(ctx context.Context, cfg config.Config, b *Bus, g *generations, runners runnerSet, owner Ownership) (Status, error) {
	msgs, err := b.Log.Messages(ctx)
	if err != nil {
		return Status{}, err
	}
	st := Status{Replica: owner.Replica(), Owned: owner.Owned(), Takeovers: owner.Takeovers(), Partitions: cfg.Partitions, Bus: b.Kind, StreamMessages: msgs}
	st.Owners = owners(owner, st.Owned)
	if st.Heads, err = b.Log.Heads(ctx); err != nil {
		return Status{}, err
	}
	for _, h := range st.Heads {
		st.StreamLast = max(st.StreamLast, h)
	}
	st.Rebuilds = g.rebuilds.Load()
	for i, r := range runners {
		ps := projectionStatus(ctx, r, st.Heads)
		f := g.followed[i]
		ps.Generation, ps.Rebuilding = f.generation(), !f.ready.Load()
		if ps.DeadLetters, err = b.DeadLetters.Count(ctx, r.Name()); err != nil {
			return Status{}, fmt.Errorf("dead letters: %w", err)
		}
		st.Projections = append(st.Projections, ps)
	}
	return st, nil
}

// partitionOwners is implemented by an [Ownership] that knows which replica
// holds every partition, not only its own (leases all replicas can read).
// It is separate from [Ownership] so that ownerships that only know their
// own partitions (a Kafka group member) need not implement it.
type partitionOwners interface {
	// Owners returns a new map from each partition with a live owner to
	// that replica's id.
	Owners() map[int]string
}

// owners maps partitions to replica ids for [Status.Owners]: the
// ownership's view of all partitions if it has one, else this replica's
// id for the partitions it owns. owned (this replica's partitions, as
// [Status.Owned] reports them) wins over a lease table that has not yet
// caught up, so Owned and Owners agree.
func owners(o Ownership, owned []int) map[int]string {
	m := map[int]string{}
	if po, ok := o.(partitionOwners); ok {
		maps.Copy(m, po.Owners())
	}
	for _, p := range owned {
		m[p] = o.Replica()
	}
	return m
}

// projectionStatus reads a projection's checkpoints, giving its store
// [statusTimeout]: status must answer while a store is down.
func projectionStatus(ctx context.Context, r *projector.Runner, heads []uint64) ProjectionStatus {
	ps := ProjectionStatus{Name: r.Name(), Applied: r.Applied(), Skipped: r.Skipped(), Parked: r.Parked()}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	cps, lag := make([]uint64, len(heads)), make([]uint64, len(heads))
	for p := range cps {
		c, err := r.Checkpoint(ctx, p)
		if err != nil {
			ps.Error = fmt.Sprintf("checkpoints unavailable: %v", err)
			return ps
		}
		cps[p], lag[p] = c, heads[p]-min(c, heads[p])
	}
	ps.Checkpoints, ps.Lag = cps, lag
	return ps
}

// statusTimeout bounds the reads of one projection's checkpoints.
const statusTimeout = 2 * time.Second

// ready reports whether the replica can reach the bus, MongoDB and Redis.
func ready(ctx context.Context, b *Bus, d *Docs, h *Hot) error {
	var errs []error
	if err := b.ready(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := d.Client.Ping(ctx, nil); err != nil {
		errs = append(errs, fmt.Errorf("mongodb: %w", err))
	}
	if err := h.Client.Do(ctx, h.Client.B().Ping().Build()).Error(); err != nil {
		errs = append(errs, fmt.Errorf("redis: %w", err))
	}
	return errors.Join(errs...)
}
