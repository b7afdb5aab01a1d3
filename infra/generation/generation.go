// Package generation names the generations of a projection and records
// which one is live. A projection's data lives in one generation of its
// store: MongoDB collections with a name suffix, a Redis key space under a
// prefix. A replay builds a new generation beside the live one, then swaps
// it in by saving the record; every replica follows the record, so readers
// switch from one complete generation to the next and never see a
// half-built one.
//
// The record of a projection is kept in the projection's own store, beside
// its data. So a Redis that lost its data (restarted without persistence)
// has lost the record too, and a replica that finds it missing knows it
// must rebuild.
package generation

import (
	"context"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"
)

// Original is the name of the generation a projection starts in: the
// collections without a suffix, the Redis key space under the default
// prefix.
const Original = ""

// Record is what a store knows of one projection's generations.
type Record struct {
	// Live is the generation readers and live processing use.
	Live string
	// Ready reports that Live is complete. It is false while replicas
	// rebuild Live by themselves (after Redis lost its data); readers then
	// answer from elsewhere where they can.
	Ready bool
	// Target, while Live is not Ready, is the stream position each
	// partition must reach in Live for it to be complete.
	Target map[int]uint64
	// Previous, while Live is not Ready, is the generation Live replaced,
	// to be removed once Live is ready.
	Previous string
	// Building is the generation a replay is building, Original for none.
	Building string
	// From is that replay's starting point, as the operator gave it
	// ("beginning", a stream sequence, or a time).
	From string
	// Seeded reports that the copy of Live into Building, with which a
	// replay that does not start from the beginning begins, is complete.
	Seeded bool
}

// Store keeps the records of projections and their generations' data.
//
// The records of one store are changed by replays (one per projection at a
// time) and by replicas; Create and Update are atomic.
type Store interface {
	// Load returns the record of projection, and false when there is none.
	Load(ctx context.Context, projection string) (Record, bool, error)
	// Create stores rec unless projection has a record already; it returns
	// the record stored, rec or the one that was there.
	Create(ctx context.Context, projection string, rec Record) (Record, error)
	// Save stores rec as projection's record.
	Save(ctx context.Context, projection string, rec Record) error
	// Update stores rec as projection's record if the record stored has
	// old's Live, Ready and Building, and reports whether it did: the
	// compare-and-set with which replays and replicas change a record
	// without losing each other's changes.
	Update(ctx context.Context, projection string, old, rec Record) (bool, error)
	// Copy replaces the data of projection in generation to with a copy of
	// its data in generation from; checkpoints are not copied.
	Copy(ctx context.Context, projection, from, to string) error
	// Drop removes the data and the checkpoints of projection in gen.
	Drop(ctx context.Context, projection, gen string) error
}

// namePattern is what a generation name looks like: Original, or "_g"
// and a base-36 time in nanoseconds.
var namePattern = regexp.MustCompile(`^(_g[0-9a-z]{1,13})?$`)

// last is the time of the last name New returned in this process.
var last atomic.Int64

// New returns a fresh generation name for now: two calls in one process
// never return the same name, even within one clock tick.
func New(now time.Time) string {
	n := now.UnixNano()
	for {
		prev := last.Load()
		if n <= prev {
			n = prev + 1
		}
		if last.CompareAndSwap(prev, n) {
			return "_g" + strconv.FormatInt(n, 36)
		}
	}
}

// Valid reports whether name is a generation name.
func Valid(name string) bool { return namePattern.MatchString(name) }

// Lost is the record with which a store that lost its data (and its
// record) is rebuilt: a new generation, not ready until every partition
// reached its head at the time of the loss. previous is the generation
// the caller applied before, if it knows it.
func Lost(now time.Time, heads []uint64, previous string) Record {
	target := map[int]uint64{}
	for p, h := range heads {
		if h > 0 {
			target[p] = h
		}
	}
	return Record{Live: New(now), Target: target, Previous: previous}
}
