package mongo_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/evflow/evflow/infra/generation"
	"github.com/evflow/evflow/infra/generation/storetest"
	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/projections"
)

// generations returns the generation store of db with FerretDB's bulk cap.
func generations(t *testing.T, db *mongo.Database) *evmongo.Generations {
	t.Helper()
	g, err := evmongo.NewGenerations(db, evmongo.Config{MaxBulk: evmongo.FerretMaxBulk})
	if err != nil {
		t.Fatalf("NewGenerations: %v", err)
	}
	return g
}

// storeIn returns a store over gen's collections of db, in mode.
func storeIn(t *testing.T, db *mongo.Database, mode evmongo.Config, gen string) *evmongo.Store {
	t.Helper()
	s, err := evmongo.NewStore(db, inMode(mode, evmongo.Config{MaxBulk: evmongo.FerretMaxBulk, Suffix: gen}))
	if err != nil {
		t.Fatalf("NewStore(%q): %v", gen, err)
	}
	return s
}

// collections returns the names of db's collections.
func collections(t *testing.T, db *mongo.Database) []string {
	t.Helper()
	names, err := db.ListCollectionNames(ctx(t), bson.D{})
	if err != nil {
		t.Fatalf("list collections: %v", err)
	}
	slices.Sort(names)
	return names
}

// count returns the number of documents of db's collection name.
func count(t *testing.T, db *mongo.Database, name string) int {
	t.Helper()
	cur, err := db.Collection(name).Find(ctx(t), bson.D{})
	if err != nil {
		t.Fatalf("find in %s: %v", name, err)
	}
	var docs []bson.Raw
	if err := cur.All(ctx(t), &docs); err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return len(docs)
}

func TestNewGenerationsValidation(t *testing.T) {
	client, err := mongo.Connect() // does not dial
	if err != nil {
		t.Fatalf("mongo.Connect: %v", err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	if _, err := evmongo.NewGenerations(nil, evmongo.Config{}); err == nil {
		t.Error("NewGenerations(nil db) succeeded")
	}
	if _, err := evmongo.NewGenerations(client.Database("x"), evmongo.Config{MaxBulk: -1}); err == nil {
		t.Error("NewGenerations(MaxBulk -1) succeeded")
	}
}

func TestGenerationRecords(t *testing.T) {
	e := startEnv(t)
	ctx := ctx(t)
	g := generations(t, e.freshDB(t))
	if rec, ok, err := g.Load(ctx, "redis"); err != nil || ok || !reflect.DeepEqual(rec, generation.Record{}) {
		t.Fatalf("Load(missing) = %+v, %v, %v; want zero, false, nil", rec, ok, err)
	}
	first := generation.Record{
		Live: "_g1", Ready: false, Target: map[int]uint64{0: 5, 3: 9, 12: 1 << 40},
		Building: "_g2", From: "2026-03-01T00:00:00Z", Seeded: true,
	}
	if got, err := g.Create(ctx, "redis", first); err != nil || !reflect.DeepEqual(got, first) {
		t.Fatalf("Create = %+v, %v; want %+v", got, err, first)
	}
	load := func(want generation.Record) {
		t.Helper()
		if got, ok, err := g.Load(ctx, "redis"); err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Load = %+v, %v, %v; want %+v", got, ok, err, want)
		}
	}
	load(first)
	second := generation.Record{Live: "_g3", Ready: true}
	if got, err := g.Create(ctx, "redis", second); err != nil || !reflect.DeepEqual(got, first) {
		t.Errorf("second Create = %+v, %v; want the first record %+v", got, err, first)
	}
	load(first)
	third := generation.Record{Live: "_g2", Ready: true, Building: generation.Original, From: "", Seeded: false}
	if err := g.Save(ctx, "redis", third); err != nil {
		t.Fatalf("Save: %v", err)
	}
	load(third)
	// Save of a projection without a record creates it.
	if err := g.Save(ctx, "apps", first); err != nil {
		t.Fatalf("Save(new): %v", err)
	}
	if got, ok, err := g.Load(ctx, "apps"); err != nil || !ok || !reflect.DeepEqual(got, first) {
		t.Errorf("Load(apps) = %+v, %v, %v; want %+v", got, ok, err, first)
	}
	if err := g.Save(ctx, "redis", generation.Record{Live: "bad"}); err == nil {
		t.Error("Save(invalid live generation) succeeded")
	}
	if err := g.Save(ctx, "redis", generation.Record{Target: map[int]uint64{0: 1 << 63}}); err == nil {
		t.Error("Save(target 1<<63) succeeded; a BSON int64 cannot hold it")
	}
	load(third)
}

func TestGenerationsCopy(t *testing.T) { eachMode(t, testGenerationsCopy) }

func testGenerationsCopy(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	db := e.freshDB(t)
	g := generations(t, db)
	live := storeIn(t, db, mode, generation.Original)
	apps := []projections.App{fullApp(), newApp("a", 1), newApp("b", 2)}
	if lost, err := live.SaveApps(ctx, appWrites(0, apps...)); err != nil || len(lost) != 0 {
		t.Fatalf("SaveApps = %v, %v", lost, err)
	}
	const n = 40 // daily counters: three bulks of FerretMaxBulk
	if err := live.AddDailyLaunches(ctx, manyGroups(n, 100)); err != nil {
		t.Fatalf("AddDailyLaunches: %v", err)
	}
	for _, p := range []string{projections.AppsName, projections.DailyStatsName} {
		if err := live.SaveCheckpoint(ctx, p, 0, 500); err != nil {
			t.Fatalf("SaveCheckpoint(%s): %v", p, err)
		}
	}

	gen := generation.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	e.counter.Reset()
	for _, p := range []string{projections.AppsName, projections.DailyStatsName} {
		if err := g.Copy(ctx, p, generation.Original, gen); err != nil {
			t.Fatalf("Copy(%s): %v", p, err)
		}
	}
	if got := e.counter.Count("insert"); got != 1+3 {
		t.Errorf("%d insert commands to copy 3 apps and %d counters in bulks of %d, want 4", got, n, evmongo.FerretMaxBulk)
	}
	shadow := storeIn(t, db, mode, gen)
	checkApps := func(s *evmongo.Store) {
		t.Helper()
		for _, want := range apps {
			if got, ok, err := s.App(ctx, want.ID); err != nil || !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("App(%s) = %+v, %v, %v\nwant %+v", want.ID, got, ok, err, want)
			}
		}
	}
	checkApps(shadow)
	checkMany(t, shadow, n)
	for _, p := range []string{projections.AppsName, projections.DailyStatsName} {
		if got, err := shadow.Checkpoint(ctx, p, 0); err != nil || got != 0 {
			t.Errorf("copy's Checkpoint(%s, 0) = %d, %v; want 0 (checkpoints are not copied)", p, got, err)
		}
	}

	// A copy over a non-empty target leaves only the copied documents.
	if lost, err := shadow.SaveApps(ctx, appWrites(0, newApp("extra", 7))); err != nil || len(lost) != 0 {
		t.Fatalf("SaveApps(extra) = %v, %v", lost, err)
	}
	if err := g.Copy(ctx, projections.AppsName, generation.Original, gen); err != nil {
		t.Fatalf("Copy again: %v", err)
	}
	checkApps(shadow)
	if got := count(t, db, evmongo.AppsCollection+gen); got != len(apps) {
		t.Errorf("%d apps after copying over a non-empty target, want %d", got, len(apps))
	}

	// A copy of a missing source gives an empty target.
	if err := g.Copy(ctx, projections.DailyStatsName, "_gnothing", gen); err != nil {
		t.Fatalf("Copy(missing source): %v", err)
	}
	if got := count(t, db, evmongo.DailyStatsCollection+gen); got != 0 {
		t.Errorf("%d counters after copying a missing source, want 0", got)
	}
	checkMany(t, live, n) // the source is untouched

	for _, c := range []struct{ projection, from, to string }{
		{"redis", generation.Original, gen},
		{projections.AppsName, "bad", gen},
		{projections.AppsName, generation.Original, "bad"},
		{projections.AppsName, gen, gen},
	} {
		if err := g.Copy(ctx, c.projection, c.from, c.to); err == nil {
			t.Errorf("Copy(%q, %q, %q) succeeded", c.projection, c.from, c.to)
		}
	}
}

func TestGenerationsDrop(t *testing.T) { eachMode(t, testGenerationsDrop) }

func testGenerationsDrop(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	db := e.freshDB(t)
	g := generations(t, db)
	gen := "_g2"
	for _, gen := range []string{generation.Original, gen} {
		s := storeIn(t, db, mode, gen)
		if lost, err := s.SaveApps(ctx, appWrites(0, newApp("a", 1))); err != nil || len(lost) != 0 {
			t.Fatalf("SaveApps = %v, %v", lost, err)
		}
		if err := s.AddDailyLaunches(ctx, []projections.LaunchGroup{group("a", "2026-03-01", 1)}); err != nil {
			t.Fatalf("AddDailyLaunches: %v", err)
		}
		for _, p := range []string{projections.AppsName, projections.DailyStatsName} {
			for part := range 3 {
				if err := s.SaveCheckpoint(ctx, p, part, uint64(10+part)); err != nil {
					t.Fatalf("SaveCheckpoint: %v", err)
				}
			}
		}
	}
	s := storeIn(t, db, mode, gen)
	checkpoints := func(s *evmongo.Store, p string, want map[int]uint64) {
		t.Helper()
		if got, err := s.Checkpoints(ctx, p); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Checkpoints(%s) = %v, %v; want %v", p, got, err, want)
		}
	}
	all := map[int]uint64{0: 10, 1: 11, 2: 12}
	checkpoints(s, projections.AppsName, all)

	if err := g.Drop(ctx, projections.AppsName, gen); err != nil {
		t.Fatalf("Drop(apps, %s): %v", gen, err)
	}
	checkpoints(s, projections.AppsName, map[int]uint64{})
	checkpoints(s, projections.DailyStatsName, all)
	if got, err := s.DailyLaunches(ctx, "a", "2026-03-01"); err != nil || got != 1 {
		t.Errorf("DailyLaunches after dropping apps = %d, %v; want 1", got, err)
	}
	want := []string{"apps", "checkpoints", "checkpoints_g2", "daily_stats", "daily_stats_g2"}
	if got := collections(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("collections after dropping apps %s = %v, want %v", gen, got, want)
	}
	if err := g.Drop(ctx, projections.DailyStatsName, gen); err != nil {
		t.Fatalf("Drop(daily_stats, %s): %v", gen, err)
	}
	want = []string{"apps", "checkpoints", "daily_stats"}
	if got := collections(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("collections after dropping both of %s = %v, want %v", gen, got, want)
	}

	// The original generation keeps its checkpoints collection.
	live := storeIn(t, db, mode, generation.Original)
	for _, p := range []string{projections.AppsName, projections.DailyStatsName} {
		if err := g.Drop(ctx, p, generation.Original); err != nil {
			t.Fatalf("Drop(%s, original): %v", p, err)
		}
		checkpoints(live, p, map[int]uint64{})
	}
	if got, want := collections(t, db), []string{"checkpoints"}; !reflect.DeepEqual(got, want) {
		t.Errorf("collections after dropping the original generation = %v, want %v", got, want)
	}

	if err := g.Drop(ctx, "redis", gen); err == nil {
		t.Error("Drop(unknown projection) succeeded")
	}
	if err := g.Drop(ctx, projections.AppsName, "bad"); err == nil {
		t.Error("Drop(invalid generation) succeeded")
	}
}

func TestTopDaily(t *testing.T) { eachMode(t, testTopDaily) }

func testTopDaily(t *testing.T, mode evmongo.Config) {
	const day = "2026-03-01"
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{}))
	groups := []projections.LaunchGroup{
		group("c", day, span(1, 3)...),
		group("z", day, span(11, 15)...),
		group("a", day, span(21, 23)...),
		group("d", day, 31),
		group("b", day, span(41, 45)...),
		group("x", "2026-03-02", span(51, 60)...), // another day
	}
	if err := s.AddDailyLaunches(ctx, groups); err != nil {
		t.Fatalf("AddDailyLaunches: %v", err)
	}
	all := []projections.AppCount{{AppID: "b", Launches: 5}, {AppID: "z", Launches: 5}, {AppID: "a", Launches: 3}, {AppID: "c", Launches: 3}, {AppID: "d", Launches: 1}}
	for _, tt := range []struct {
		day  string
		n    int
		want []projections.AppCount
	}{
		{day, 0, []projections.AppCount{}},
		{day, 1, all[:1]},
		{day, 3, all[:3]}, // a tie at the cut-off: the first by id
		{day, 5, all},
		{day, 100, all},
		{"2026-03-03", 3, []projections.AppCount{}},
	} {
		got, err := s.TopDaily(ctx, tt.day, tt.n)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("TopDaily(%s, %d) = %v, %v; want %v", tt.day, tt.n, got, err, tt.want)
		}
	}
	if _, err := s.TopDaily(ctx, day, -1); err == nil {
		t.Error("TopDaily(-1) succeeded")
	}
}

func TestGenerationRecordsContract(t *testing.T) {
	e := startEnv(t)
	storetest.Records(t, ctx(t), generations(t, e.freshDB(t)), "apps")
}
