package mongo_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

func TestIsFerretDB(t *testing.T) {
	e := startEnv(t)
	ferret, err := evmongo.IsFerretDB(ctx(t), e.freshDB(t))
	if err != nil || !ferret {
		t.Fatalf("IsFerretDB(FerretDB) = %v, %v; want true", ferret, err)
	}
}

func TestFerretConfig(t *testing.T) {
	c := evmongo.FerretConfig(evmongo.Config{Suffix: "_g2"})
	if !c.Serialize || c.MaxBulk != evmongo.FerretMaxBulk || c.Suffix != "_g2" {
		t.Errorf("FerretConfig(zero) = %+v; want serialized, FerretMaxBulk, suffix kept", c)
	}
	if c := evmongo.FerretConfig(evmongo.Config{MaxBulk: 5}); c.MaxBulk != 5 {
		t.Errorf("FerretConfig kept MaxBulk %d, want the caller's 5", c.MaxBulk)
	}
}

// Three replicas, each with its own client (pool of ferret.MaxPoolSize)
// and eight partitions writing at once, on one FerretDB: with FerretConfig
// every counter ends exact and nothing hangs. Unserialized bulks of 30
// deadlock FerretDB's SQLite pool in this test (each operation of a bulk
// update holds a connection until the bulk ends).
func TestFerretConfigManyReplicasWriteAtOnce(t *testing.T) {
	m := testenv.StartMongo(t)
	ctx, cancel := context.WithTimeout(testenv.Context(t), 60*time.Second)
	defer cancel()
	const replicas, partitions, apps, rounds = 3, 8, 20, 2
	db := fmt.Sprintf("replicas_%d", dbSeq.Add(1))
	var wg sync.WaitGroup
	errs := make(chan error, replicas*partitions)
	for r := range replicas {
		client, d, err := evmongo.Connect(ctx, m.URI(), db)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer client.Disconnect(context.Background())
		s, err := evmongo.NewStore(d, evmongo.FerretConfig(evmongo.Config{}))
		if err != nil {
			t.Fatal(err)
		}
		for p := range partitions {
			wg.Go(func() {
				// Partition (r, p) owns its apps; every round counts one
				// launch per app at a new position.
				for round := range rounds {
					var gs []projections.LaunchGroup
					for a := range apps {
						app := fmt.Sprintf("r%d-p%d-a%d", r, p, a)
						gs = append(gs, group(app, "2026-03-01", uint64(1+round*apps+a)))
					}
					if err := s.AddDailyLaunches(ctx, gs); err != nil {
						errs <- fmt.Errorf("replica %d partition %d round %d: %w", r, p, round, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	client, d, err := evmongo.Connect(ctx, m.URI(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	s, _ := evmongo.NewStore(d, evmongo.Config{})
	for r := range replicas {
		for p := range partitions {
			for a := range apps {
				app := fmt.Sprintf("r%d-p%d-a%d", r, p, a)
				if got, err := s.DailyLaunches(ctx, app, "2026-03-01"); err != nil || got != rounds {
					t.Fatalf("DailyLaunches(%s) = %d, %v; want %d", app, got, err, rounds)
				}
			}
		}
	}
}
