package redis

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/redis/rueidis"

	"github.com/evflow/evflow/infra/generation"
	"github.com/evflow/evflow/infra/generation/storetest"
	"github.com/evflow/evflow/projections"
)

func TestPrefixOf(t *testing.T) {
	if got := PrefixOf(generation.Original); got != "ev" {
		t.Errorf("PrefixOf(Original) = %q, want ev", got)
	}
	if got := PrefixOf("_gk3x9"); got != "ev_gk3x9" {
		t.Errorf("PrefixOf(_gk3x9) = %q, want ev_gk3x9", got)
	}
}

func TestGenerationRecords(t *testing.T) {
	first := generation.Record{
		Live: "_g1", Target: map[int]uint64{0: 5, 3: 1<<64 - 1},
		Building: "_g2", From: "beginning", Seeded: true,
	}
	second := generation.Record{Live: "_g3", Ready: true, Building: "_g4", From: "2026-03-01T00:00:00Z"}
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		g := NewGenerations(client)
		load := func(want generation.Record, wantFound bool) {
			t.Helper()
			rec, found, err := g.Load(ctx, "redis")
			if err != nil {
				t.Fatal(err)
			}
			if found != wantFound || !reflect.DeepEqual(rec, want) {
				t.Errorf("Load = %+v, %v; want %+v, %v", rec, found, want, wantFound)
			}
		}
		load(generation.Record{}, false)

		got, err := g.Create(ctx, "redis", first)
		if err != nil || !reflect.DeepEqual(got, first) {
			t.Fatalf("first Create = %+v, %v; want %+v", got, err, first)
		}
		load(first, true)
		got, err = g.Create(ctx, "redis", second)
		if err != nil || !reflect.DeepEqual(got, first) {
			t.Fatalf("second Create = %+v, %v; want the first record %+v", got, err, first)
		}
		load(first, true)

		// Save replaces every field: Target, Building, From and Seeded emptied stay empty.
		for _, rec := range []generation.Record{second, {Live: "_g3", Ready: true}} {
			if err := g.Save(ctx, "redis", rec); err != nil {
				t.Fatal(err)
			}
			load(rec, true)
		}
		if _, found, err := g.Load(ctx, "mongo"); err != nil || found {
			t.Errorf("Load of another projection = found %v, %v; want none", found, err)
		}

		for _, bad := range []generation.Record{{Live: "g1"}, {Building: "_g:1"}} {
			if _, err := g.Create(ctx, "other", bad); err == nil || !strings.Contains(err.Error(), "invalid generation name") {
				t.Errorf("Create(%+v) err = %v, want invalid generation name", bad, err)
			}
			if err := g.Save(ctx, "other", bad); err == nil || !strings.Contains(err.Error(), "invalid generation name") {
				t.Errorf("Save(%+v) err = %v, want invalid generation name", bad, err)
			}
		}
	})
}

// TestGenerationCreateRace: of replicas racing to create a record, all get
// the same one.
func TestGenerationCreateRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		g := NewGenerations(client)
		got := make([]generation.Record, 8)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				rec, err := g.Create(ctx, "redis", generation.Record{Live: fmt.Sprintf("_g%d", i), Target: map[int]uint64{i: uint64(i)}})
				if err != nil {
					t.Error(err)
				}
				got[i] = rec
			})
		}
		wg.Wait()
		stored, _, err := g.Load(ctx, "redis")
		if err != nil {
			t.Fatal(err)
		}
		for i, rec := range got {
			if !reflect.DeepEqual(rec, stored) {
				t.Errorf("replica %d got %+v, stored is %+v", i, rec, stored)
			}
		}
	})
}

// genData is what writeGen writes, and what a generation holding it answers.
var genData = hotCase{
	releases: []releaseWant{{"a", "2.0", 12, true}, {"b", "", 11, true}, {"c", "", 0, false}},
	launches: []launchWant{{"a", day1, 3, 2}, {"a", day2, 1, 1}, {"b", day1, 2, 2}, {"c", day1, 0, 0}},
	top: map[string][]projections.AppCount{
		day1: {{AppID: "a", Launches: 3}, {AppID: "b", Launches: 2}},
		day2: {{AppID: "a", Launches: 1}},
	},
}

// bulkApps is the number of extra apps writeGen releases: more than
// scanCount, so SCAN takes several calls on redis-server (miniredis answers
// every SCAN in one).
const bulkApps = 1200

// writeGen writes genData, bulkApps releases and checkpoints into s's key
// space through the store's write path.
func writeGen(t *testing.T, s *Store) {
	t.Helper()
	ctx := timeout(t)
	bulk := make([]projections.ReleaseChange, bulkApps)
	for i := range bulk {
		bulk[i] = rel(fmt.Sprintf("bulk%d", i), "1.0", uint64(i+1))
	}
	batches := []hotBatch{
		{releases: []projections.ReleaseChange{rel("a", "1.0", 10), rel("b", "0.1", 3)}, launches: []projections.LaunchGroup{group("a", day1, 1, "x", "y", "x")}},
		{releases: []projections.ReleaseChange{rel("a", "2.0", 12), rel("b", "", 11)}, launches: []projections.LaunchGroup{group("a", day2, 4, "z"), group("b", day1, 5, "x", "w")}},
		releases(bulk...),
	}
	for i, b := range batches {
		if err := s.ApplyHot(ctx, b.releases, b.launches); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	for p, pos := range []uint64{12, 7, 3} {
		if err := s.SaveCheckpoint(ctx, "redis", p, pos); err != nil {
			t.Fatal(err)
		}
	}
}

// keysOf returns the keys of generation gen, without its prefix, sorted.
func keysOf(t *testing.T, client rueidis.Client, gen string) []string {
	t.Helper()
	prefix := PrefixOf(gen)
	var out []string
	err := NewGenerations(client).scan(timeout(t), prefix, func(keys []string) error {
		for _, k := range keys {
			out = append(out, strings.TrimPrefix(k, prefix))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestGenerationCopy(t *testing.T) {
	const gen = "_gcopy"
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		g := NewGenerations(client)
		if _, err := g.Create(ctx, "redis", generation.Record{Live: generation.Original, Ready: true}); err != nil {
			t.Fatal(err)
		}
		orig := newStore(t, client, PrefixOf(generation.Original))
		writeGen(t, orig)
		// The target holds keys and checkpoints of its own, which Copy removes.
		copied := newStore(t, client, PrefixOf(gen))
		stale := []projections.LaunchGroup{group("stale", "2026-01-01", 1, "x"), group("a", day1, 100, "q")}
		if err := copied.ApplyHot(ctx, []projections.ReleaseChange{rel("stale", "9.9", 99)}, stale); err != nil {
			t.Fatal(err)
		}
		if err := copied.SaveCheckpoint(ctx, "redis", 5, 99); err != nil {
			t.Fatal(err)
		}

		if err := g.Copy(ctx, "redis", generation.Original, gen); err != nil {
			t.Fatal(err)
		}

		runHotCase(t, orig, genData)
		runHotCase(t, copied, genData)
		runHotCase(t, copied, hotCase{
			releases: []releaseWant{{"stale", "", 0, false}, {"bulk1199", "1.0", 1200, true}},
			launches: []launchWant{{"stale", "2026-01-01", 0, 0}},
			top:      map[string][]projections.AppCount{"2026-01-01": {}},
		})
		want, got := keysOf(t, client, generation.Original), keysOf(t, client, gen)
		want = slices.DeleteFunc(want, func(k string) bool { return strings.HasPrefix(k, ":ckpt:") })
		if len(want) < bulkApps || !slices.Equal(got, want) {
			t.Errorf("copied keys (%d) differ from the original's without checkpoints (%d)", len(got), len(want))
		}
		if ckpt, err := copied.Checkpoints(ctx, "redis"); err != nil || len(ckpt) != 0 {
			t.Errorf("copied checkpoints = %v, %v; want none", ckpt, err)
		}
		if ckpt, err := orig.Checkpoints(ctx, "redis"); err != nil || len(ckpt) != 3 {
			t.Errorf("original checkpoints = %v, %v; want 3 partitions", ckpt, err)
		}
		if _, found, err := g.Load(ctx, "redis"); err != nil || !found {
			t.Errorf("record after Copy: found %v, %v", found, err)
		}

		// And back, over a changed original.
		if err := orig.ApplyHot(ctx, []projections.ReleaseChange{rel("a", "3.0", 20)}, nil); err != nil {
			t.Fatal(err)
		}
		if err := g.Copy(ctx, "redis", gen, generation.Original); err != nil {
			t.Fatal(err)
		}
		runHotCase(t, orig, genData)
		if ckpt, err := orig.Checkpoints(ctx, "redis"); err != nil || len(ckpt) != 0 {
			t.Errorf("original checkpoints after a copy into it = %v, %v; want none", ckpt, err)
		}

		for _, bad := range [][2]string{{gen, gen}, {"x", gen}, {gen, "_g:"}} {
			if err := g.Copy(ctx, "redis", bad[0], bad[1]); err == nil {
				t.Errorf("Copy(%q, %q): no error", bad[0], bad[1])
			}
		}
	})
}

func TestGenerationDrop(t *testing.T) {
	// "_g1" and "_g12": one prefix starts the other.
	gens := []string{generation.Original, "_g1", "_g12"}
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		g := NewGenerations(client)
		before := map[string][]string{}
		for _, gen := range gens {
			writeGen(t, newStore(t, client, PrefixOf(gen)))
			if _, err := g.Create(ctx, "redis"+gen, generation.Record{Live: gen}); err != nil {
				t.Fatal(err)
			}
			before[gen] = keysOf(t, client, gen)
		}
		for i, gen := range []string{"_g1", generation.Original} {
			if err := g.Drop(ctx, "redis", gen); err != nil {
				t.Fatal(err)
			}
			before[gen] = nil
			for _, other := range gens {
				if got := keysOf(t, client, other); !slices.Equal(got, before[other]) {
					t.Errorf("drop %d: generation %q has %d keys, want %d", i, other, len(got), len(before[other]))
				}
			}
		}
		runHotCase(t, newStore(t, client, PrefixOf("_g12")), genData)
		for _, gen := range gens {
			if rec, found, err := g.Load(ctx, "redis"+gen); err != nil || !found || rec.Live != gen {
				t.Errorf("record of %q after Drop = %+v, %v, %v", gen, rec, found, err)
			}
		}
		if err := g.Drop(ctx, "redis", "g1"); err == nil || !strings.Contains(err.Error(), "invalid generation name") {
			t.Errorf("Drop(g1) err = %v, want invalid generation name", err)
		}
	})
}

func TestCheckpoints(t *testing.T) {
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		s := newStore(t, client, "")
		want := map[int]uint64{0: 9, 1: 1<<64 - 1, 7: 3}
		for p, pos := range want {
			if err := s.SaveCheckpoint(ctx, "redis", p, pos); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SaveCheckpoint(ctx, "mongo", 2, 5); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Checkpoints(ctx, "redis"); err != nil || !maps.Equal(got, want) {
			t.Errorf("Checkpoints(redis) = %v, %v; want %v", got, err, want)
		}
		if got, err := s.Checkpoints(ctx, "none"); err != nil || got == nil || len(got) != 0 {
			t.Errorf("Checkpoints(none) = %#v, %v; want an empty map", got, err)
		}
	})
}

func TestGenerationRecordsContract(t *testing.T) {
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		storetest.Records(t, timeout(t), NewGenerations(client), "redis")
	})
}
