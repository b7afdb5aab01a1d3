package mongo_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/bus/lettertest"
	evmongo "github.com/evflow/evflow/infra/mongo"
)

var _ lettertest.Store = (*evmongo.DeadLetters)(nil)

// deadLetters returns the dead letters of db.
func deadLetters(t *testing.T, db *mongo.Database) *evmongo.DeadLetters {
	t.Helper()
	d, err := evmongo.NewDeadLetters(ctx(t), db)
	if err != nil {
		t.Fatalf("NewDeadLetters: %v", err)
	}
	return d
}

// TestDeadLettersContract runs the dead-letter contract on FerretDB, each
// subtest in a database of its own.
func TestDeadLettersContract(t *testing.T) {
	e := startEnv(t)
	lettertest.Letters(t, func(t *testing.T) lettertest.Store { return deadLetters(t, e.freshDB(t)) })
}

func TestNewDeadLettersValidation(t *testing.T) {
	if _, err := evmongo.NewDeadLetters(context.Background(), nil); err == nil {
		t.Error("NewDeadLetters(nil db) succeeded")
	}
}

// TestDeadLettersReopen: opening the store again (a restart, a second
// replica) keeps its indexes, its letters and its counter.
func TestDeadLettersReopen(t *testing.T) {
	e := startEnv(t)
	ctx := ctx(t)
	db := e.freshDB(t)
	first := deadLetters(t, db)
	if err := first.Park(ctx, bus.Letter{Projection: "apps", Position: 1}); err != nil {
		t.Fatalf("Park: %v", err)
	}
	second := deadLetters(t, db)
	if err := second.Park(ctx, bus.Letter{Projection: "apps", Position: 2}); err != nil {
		t.Fatalf("Park: %v", err)
	}
	ls, err := second.List(ctx, "")
	if err != nil || len(ls) != 2 || ls[0].Seq != 1 || ls[1].Seq != 2 {
		t.Fatalf("List = %+v, %v; want seqs 1 and 2", ls, err)
	}
	cur, err := db.Collection(evmongo.DeadLettersCollection).Indexes().List(ctx)
	if err != nil {
		t.Fatalf("list indexes: %v", err)
	}
	var idx []bson.M
	if err := cur.All(ctx, &idx); err != nil {
		t.Fatalf("list indexes: %v", err)
	}
	if len(idx) != 3 { // _id, seq, projection_partition_aggregate
		t.Errorf("indexes = %v; want _id and two more", idx)
	}
}

func TestDeadLettersNotFound(t *testing.T) {
	d := deadLetters(t, startEnv(t).freshDB(t))
	ctx := ctx(t)
	if _, err := d.Get(ctx, 7); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Errorf("Get of a missing letter: %v; want mongo.ErrNoDocuments", err)
	}
	if err := d.Delete(ctx, 7); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Errorf("Delete of a missing letter: %v; want mongo.ErrNoDocuments", err)
	}
}

func TestParkRejectsHugePosition(t *testing.T) {
	d := deadLetters(t, startEnv(t).freshDB(t))
	if err := d.Park(ctx(t), bus.Letter{Projection: "apps", Position: 1 << 63}); err == nil {
		t.Error("Park at position 1<<63 succeeded; a BSON int64 cannot hold it")
	}
}

// TestDeadLettersReplicasParkAtOnce: two stores on one database (two
// replicas) parking at once give every letter its own Seq, although
// FerretDB's $inc, a read then a write, hands one number out twice when
// two processes draw at once.
func TestDeadLettersReplicasParkAtOnce(t *testing.T) {
	e := startEnv(t)
	ctx := ctx(t)
	db := e.freshDB(t)
	replicas := []*evmongo.DeadLetters{deadLetters(t, db), deadLetters(t, db)}
	const workers, each = 6, 20
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				errs <- replicas[w%2].Park(ctx, bus.Letter{Projection: "apps", Partition: w, Position: uint64(w*each + i)})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Park: %v", err)
		}
	}
	ls, err := replicas[0].List(ctx, "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	seqs := map[uint64]bool{}
	for _, l := range ls {
		seqs[l.Seq] = true
	}
	if len(ls) != workers*each || len(seqs) != len(ls) {
		t.Errorf("%d letters with %d distinct seqs; want %d of each", len(ls), len(seqs), workers*each)
	}
}
