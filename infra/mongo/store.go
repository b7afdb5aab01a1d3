// Package mongo is evflow's MongoDB adapter: the [Store] behind the MongoDB
// projection (apps, daily stats, checkpoints) and its query reads, a
// [Connect] helper and a [CommandCounter] to measure round trips.
//
// Every write is conditional on a stream position (DESIGN.md, invariant 2)
// and none needs a transaction, so the same code runs on a MongoDB replica
// set and on FerretDB. FerretDB's bulk results are weaker than MongoDB's
// (its update command ignores ordered=false, stops at the first failing
// operation, reports that error at index 0 and drops the counts of the
// operations before it), so the store never relies on per-operation bulk
// results: it reads back what it cannot tell.
package mongo

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/evflow/evflow/projections"
)

// Store keeps the MongoDB projection's documents and answers the query
// API's reads. It is safe for concurrent use; it holds no state beyond
// collection handles.
type Store struct {
	cfg         Config
	apps        *mongo.Collection
	dailyStats  *mongo.Collection
	checkpoints *mongo.Collection
	writeMu     sync.Mutex // held around each write when cfg.Serialize
}

// serialize holds the write lock when the store is configured to serialize
// its writes; call the returned function to release it.
func (s *Store) serialize() func() {
	if !s.cfg.Serialize {
		return func() {}
	}
	s.writeMu.Lock()
	return s.writeMu.Unlock
}

var _ projections.DocStore = (*Store)(nil)

// NewStore returns a store over db's collections [AppsCollection],
// [DailyStatsCollection] and [CheckpointsCollection], with cfg's suffix
// appended. It fails if cfg is invalid. Reads go to the
// primary: the projection folds onto what it reads, so a stale secondary
// would only cause conflicts. Durability of writes is the write concern
// of db ([Connect] sets majority).
func NewStore(db *mongo.Database, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("mongo store: nil database")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := options.Collection().SetReadPreference(readpref.Primary())
	return &Store{
		cfg:         cfg,
		apps:        db.Collection(AppsCollection+cfg.Suffix, opts),
		dailyStats:  db.Collection(DailyStatsCollection+cfg.Suffix, opts),
		checkpoints: db.Collection(CheckpointsCollection+cfg.Suffix, opts),
	}, nil
}

// Config returns the store's configuration, defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// position converts a stream position to the int64 stored in documents.
func position(p uint64) (int64, error) {
	if p > math.MaxInt64 {
		return 0, fmt.Errorf("position %d does not fit a BSON int64", p)
	}
	return int64(p), nil
}

// dupKeyIndexes returns the model indexes of a bulk write's duplicate-key
// errors. ok is false when err holds anything else (a command or network
// error, a write concern error, another write error): then nothing about
// the bulk can be assumed. On FerretDB the indexes of an update bulk are
// not reliable (always 0); callers only use them for insert bulks.
func dupKeyIndexes(err error) (idx []int, ok bool) {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, false
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return nil, false
		}
		idx = append(idx, we.Index)
	}
	return idx, true
}

// unordered is the option of every bulk write: operations on distinct
// documents are independent, so one failing must not stop the others (on
// MongoDB; FerretDB stops anyway, see the package comment).
func unordered() *options.BulkWriteOptionsBuilder { return options.BulkWrite().SetOrdered(false) }
