package mongo_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/testenv"
)

// env is one FerretDB with a connected client whose commands are counted.
type env struct {
	client  *mongo.Client
	counter *evmongo.CommandCounter
}

// dbSeq makes database names unique within the test binary.
var dbSeq atomic.Int64

// startEnv starts FerretDB and connects to it; both go away when t ends.
func startEnv(t *testing.T) *env {
	t.Helper()
	m := testenv.StartMongo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	counter := new(evmongo.CommandCounter)
	client, _, err := evmongo.Connect(ctx, m.URI(), "evflow", options.Client().SetMonitor(counter.Monitor()))
	if err != nil {
		t.Fatalf("connect to FerretDB: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	return &env{client: client, counter: counter}
}

// freshDB returns a database no other test or subtest uses.
func (e *env) freshDB(t *testing.T) *mongo.Database {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return e.client.Database(fmt.Sprintf("%s_%d", name, dbSeq.Add(1)))
}

// store returns a store over a fresh database, with FerretDB's bulk cap
// unless cfg sets one.
func (e *env) store(t *testing.T, cfg evmongo.Config) (*evmongo.Store, *mongo.Database) {
	t.Helper()
	if cfg.MaxBulk == 0 {
		cfg.MaxBulk = evmongo.FerretMaxBulk
	}
	db := e.freshDB(t)
	s, err := evmongo.NewStore(db, cfg)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s, db
}

// ctx returns a context bounded by the test and by a minute.
func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(testenv.Context(t), time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestNewStoreDefaultsAndValidation(t *testing.T) {
	// Connect does not dial: nothing needs to listen on this address.
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1"))
	if err != nil {
		t.Fatalf("mongo.Connect: %v", err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	db := client.Database("x")
	s, err := evmongo.NewStore(db, evmongo.Config{})
	if err != nil {
		t.Fatalf("NewStore(zero config): %v", err)
	}
	if got := s.Config().MaxBulk; got != evmongo.DefaultMaxBulk {
		t.Errorf("default MaxBulk = %d, want %d", got, evmongo.DefaultMaxBulk)
	}
	if _, err := evmongo.NewStore(nil, evmongo.Config{}); err == nil {
		t.Error("NewStore(nil db) succeeded")
	}
	if _, err := evmongo.NewStore(db, evmongo.Config{MaxBulk: -1}); err == nil {
		t.Error("NewStore(MaxBulk -1) succeeded")
	}
}

func TestSuffixSeparatesCollections(t *testing.T) { eachMode(t, testSuffixSeparatesCollections) }

func testSuffixSeparatesCollections(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	live, db := e.store(t, inMode(mode, evmongo.Config{}))
	shadow, err := evmongo.NewStore(db, inMode(mode, evmongo.Config{MaxBulk: evmongo.FerretMaxBulk, Suffix: "_g2"}))
	if err != nil {
		t.Fatalf("NewStore(shadow): %v", err)
	}
	if err := shadow.SaveCheckpoint(ctx, "mongo", 0, 7); err != nil {
		t.Fatalf("shadow SaveCheckpoint: %v", err)
	}
	if _, err := shadow.SaveApps(ctx, appWrites(0, newApp("a1", 1))); err != nil {
		t.Fatalf("shadow SaveApps: %v", err)
	}
	if got, err := live.Checkpoint(ctx, "mongo", 0); err != nil || got != 0 {
		t.Errorf("live checkpoint = %d, %v; want 0 (shadow wrote to its own collection)", got, err)
	}
	if _, ok, err := live.App(ctx, "a1"); err != nil || ok {
		t.Errorf("live App(a1) found=%v err=%v; want absent", ok, err)
	}
	names, err := db.ListCollectionNames(ctx, map[string]any{})
	if err != nil {
		t.Fatalf("list collections: %v", err)
	}
	want := map[string]bool{evmongo.AppsCollection + "_g2": false, evmongo.CheckpointsCollection + "_g2": false}
	for _, n := range names {
		if _, ok := want[n]; ok {
			want[n] = true
		}
	}
	for n, seen := range want {
		if !seen {
			t.Errorf("collection %s not created; have %v", n, names)
		}
	}
}

// eachMode runs f once per way a store checks positions: in each write's
// filter (what runs on MongoDB), and read-then-write on _id alone (what
// runs on FerretDB, see evmongo.Config.KeyOnly).
func eachMode(t *testing.T, f func(t *testing.T, mode evmongo.Config)) {
	t.Run("conditional", func(t *testing.T) { f(t, evmongo.Config{}) })
	t.Run("key-only", func(t *testing.T) { f(t, evmongo.Config{Serialize: true, KeyOnly: true}) })
}

// inMode is cfg checking positions the way mode does.
func inMode(mode, cfg evmongo.Config) evmongo.Config {
	cfg.Serialize = cfg.Serialize || mode.Serialize
	cfg.KeyOnly = mode.KeyOnly
	return cfg
}
