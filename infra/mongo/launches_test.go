package mongo_test

import (
	"fmt"
	"reflect"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/projections"
)

// group returns a launch group of app on day at the given positions.
func group(app, day string, positions ...uint64) projections.LaunchGroup {
	g := projections.LaunchGroup{AppID: app, Day: day, Tenant: "org1", Positions: positions}
	for _, p := range positions {
		g.Devices = append(g.Devices, fmt.Sprintf("dev%d", p))
	}
	return g
}

// span returns the positions from..to, inclusive.
func span(from, to uint64) []uint64 {
	var ps []uint64
	for p := from; p <= to; p++ {
		ps = append(ps, p)
	}
	return ps
}

func TestAddDailyLaunches(t *testing.T) { eachMode(t, testAddDailyLaunches) }

func testAddDailyLaunches(t *testing.T, mode evmongo.Config) {
	const day = "2026-03-01"
	tests := []struct {
		name    string
		batches [][]projections.LaunchGroup // applied in order
		want    int64
		wantPos int64
	}{
		{
			name:    "group applied",
			batches: [][]projections.LaunchGroup{{group("a", day, 3, 5, 8)}},
			want:    3, wantPos: 8,
		},
		{
			name:    "applied again changes nothing",
			batches: [][]projections.LaunchGroup{{group("a", day, 3, 5, 8)}, {group("a", day, 3, 5, 8)}},
			want:    3, wantPos: 8,
		},
		{
			name:    "overlap counts only new positions",
			batches: [][]projections.LaunchGroup{{group("a", day, span(1, 5)...)}, {group("a", day, span(3, 9)...)}},
			want:    9, wantPos: 9,
		},
		{
			name:    "older prefix changes nothing",
			batches: [][]projections.LaunchGroup{{group("a", day, span(1, 9)...)}, {group("a", day, span(2, 6)...)}},
			want:    9, wantPos: 9,
		},
		{
			name:    "groups of one counter in one call are merged",
			batches: [][]projections.LaunchGroup{{group("a", day, 1, 2), group("a", day, 2, 5)}},
			want:    3, wantPos: 5,
		},
		{
			name:    "next batch adds",
			batches: [][]projections.LaunchGroup{{group("a", day, 1, 2)}, {group("a", day, 4, 7)}},
			want:    4, wantPos: 7,
		},
	}
	e := startEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctx(t)
			s, db := e.store(t, inMode(mode, evmongo.Config{}))
			for i, b := range tt.batches {
				if err := s.AddDailyLaunches(ctx, b); err != nil {
					t.Fatalf("batch %d: AddDailyLaunches: %v", i, err)
				}
			}
			if got, err := s.DailyLaunches(ctx, "a", day); err != nil || got != tt.want {
				t.Errorf("DailyLaunches = %d, %v; want %d", got, err, tt.want)
			}
			var doc bson.M
			err := db.Collection(evmongo.DailyStatsCollection).FindOne(ctx, bson.M{"_id": "a:" + day}).Decode(&doc)
			if err != nil {
				t.Fatalf("read counter document: %v", err)
			}
			want := bson.M{"_id": "a:" + day, "app_id": "a", "day": day, "tenant": "org1", "launches": tt.want, "pos": tt.wantPos}
			if !reflect.DeepEqual(doc, want) {
				t.Errorf("counter document = %v\nwant %v", doc, want)
			}
		})
	}
}

func TestDailyLaunchesMissing(t *testing.T) { eachMode(t, testDailyLaunchesMissing) }

func testDailyLaunchesMissing(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{}))
	if got, err := s.DailyLaunches(ctx(t), "nobody", "2026-03-01"); err != nil || got != 0 {
		t.Errorf("DailyLaunches(missing) = %d, %v; want 0", got, err)
	}
}

// manyGroups returns n groups of 3 launches each, app i on one of two
// days, at positions from base on.
func manyGroups(n int, base uint64) []projections.LaunchGroup {
	var gs []projections.LaunchGroup
	for i := range n {
		p := base + uint64(3*i)
		gs = append(gs, group(appID(i/2), fmt.Sprintf("2026-03-0%d", 1+i%2), p, p+1, p+2))
	}
	return gs
}

// checkMany checks the counters of manyGroups(n, …) applied exactly once.
func checkMany(t *testing.T, s *evmongo.Store, n int) {
	t.Helper()
	for i := range n {
		app, day := appID(i/2), fmt.Sprintf("2026-03-0%d", 1+i%2)
		if got, err := s.DailyLaunches(ctx(t), app, day); err != nil || got != 3 {
			t.Errorf("DailyLaunches(%s, %s) = %d, %v; want 3", app, day, got, err)
		}
	}
}

func TestAddDailyLaunchesSplitsBulks(t *testing.T) { eachMode(t, testAddDailyLaunchesSplitsBulks) }

func testAddDailyLaunchesSplitsBulks(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{MaxBulk: 20}))
	const n = 75 // four bulks of at most 20
	groups := manyGroups(n, 1)
	e.counter.Reset()
	if err := s.AddDailyLaunches(ctx, groups); err != nil {
		t.Fatalf("AddDailyLaunches: %v", err)
	}
	if got := e.counter.Count("update"); got != 4 {
		t.Errorf("%d update commands for %d groups in bulks of 20, want 4", got, n)
	}
	checkMany(t, s, n)
	e.counter.Reset()
	if err := s.AddDailyLaunches(ctx, groups); err != nil {
		t.Fatalf("AddDailyLaunches again: %v", err)
	}
	checkMany(t, s, n)
	t.Logf("redelivery of %d groups: %v", n, e.counter.Snapshot())
}

// TestAddDailyLaunchesAfterCrash applies a prefix of a batch's groups, as
// a replica that died mid-batch would, then the whole batch: every
// counter must hold each launch once. The already-applied groups sit at
// the start, in the middle and at the end of the bulks.
func TestAddDailyLaunchesAfterCrash(t *testing.T) { eachMode(t, testAddDailyLaunchesAfterCrash) }

func testAddDailyLaunchesAfterCrash(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{}))
	const n = 64
	groups := manyGroups(n, 1)
	var applied []projections.LaunchGroup
	for i, g := range groups {
		if i%5 == 0 || i%7 == 3 {
			applied = append(applied, g)
		}
	}
	if err := s.AddDailyLaunches(ctx, applied); err != nil {
		t.Fatalf("AddDailyLaunches(prefix): %v", err)
	}
	// and half of one group: positions of a group applied up to its middle.
	half := groups[1]
	half.Positions, half.Devices = half.Positions[:2], half.Devices[:2]
	if err := s.AddDailyLaunches(ctx, []projections.LaunchGroup{half}); err != nil {
		t.Fatalf("AddDailyLaunches(half): %v", err)
	}
	if err := s.AddDailyLaunches(ctx, groups); err != nil {
		t.Fatalf("AddDailyLaunches(all): %v", err)
	}
	checkMany(t, s, n)
}

// TestAddDailyLaunchesConcurrentWriters has several writers apply the same
// ordered batches at once, as an old and a new lease holder of a
// partition might: each launch is still counted once.
func TestAddDailyLaunchesConcurrentWriters(t *testing.T) {
	eachMode(t, testAddDailyLaunchesConcurrentWriters)
}

func testAddDailyLaunchesConcurrentWriters(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{Serialize: true})) // FerretDB's updates are not atomic
	const n, batches, writers = 10, 4, 4
	var all [][]projections.LaunchGroup
	for b := range batches {
		all = append(all, manyGroups(n, uint64(1+b*3*n)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for _, b := range all {
				if err := s.AddDailyLaunches(ctx, b); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	t.Logf("commands of %d writers: %v", writers, e.counter.Snapshot())
	for err := range errs {
		t.Errorf("writer: %v", err)
	}
	for i := range n {
		app, day := appID(i/2), fmt.Sprintf("2026-03-0%d", 1+i%2)
		if got, err := s.DailyLaunches(ctx, app, day); err != nil || got != 3*batches {
			t.Errorf("DailyLaunches(%s, %s) = %d, %v; want %d", app, day, got, err, 3*batches)
		}
	}
}
