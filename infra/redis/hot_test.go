package redis

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/evflow/evflow/projections"
)

// hotBatch is the arguments of one ApplyHot call.
type hotBatch struct {
	releases []projections.ReleaseChange
	launches []projections.LaunchGroup
}

type releaseWant struct {
	app, version string
	pos          uint64
	found        bool
}

type launchWant struct {
	app, day string
	n, uniq  int64
}

type hotCase struct {
	name     string
	batches  []hotBatch
	releases []releaseWant
	launches []launchWant
	top      map[string][]projections.AppCount // day → whole top of the day
}

func rel(app, version string, pos uint64) projections.ReleaseChange {
	return projections.ReleaseChange{AppID: app, Version: version, Position: pos}
}

func releases(rs ...projections.ReleaseChange) hotBatch { return hotBatch{releases: rs} }

func launches(gs ...projections.LaunchGroup) hotBatch { return hotBatch{launches: gs} }

const day1, day2 = "2026-03-01", "2026-03-02"

var releaseCases = []hotCase{
	{
		name:     "release set",
		batches:  []hotBatch{releases(rel("a", "1.0", 10))},
		releases: []releaseWant{{"a", "1.0", 10, true}, {"b", "", 0, false}},
	},
	{
		name:     "newer release wins",
		batches:  []hotBatch{releases(rel("a", "1.0", 10)), releases(rel("a", "2.0", 12))},
		releases: []releaseWant{{"a", "2.0", 12, true}},
	},
	{
		name:     "older release ignored",
		batches:  []hotBatch{releases(rel("a", "2.0", 12)), releases(rel("a", "1.0", 10))},
		releases: []releaseWant{{"a", "2.0", 12, true}},
	},
	{
		name:     "rollback to none keeps position",
		batches:  []hotBatch{releases(rel("a", "1.0", 10)), releases(rel("a", "", 11)), releases(rel("a", "1.0", 10))},
		releases: []releaseWant{{"a", "", 11, true}},
	},
	{
		name: "redelivered releases change nothing",
		batches: []hotBatch{
			releases(rel("a", "1.0", 10), rel("b", "0.1", 3)),
			releases(rel("a", "2.0", 12)),
			releases(rel("a", "1.0", 10), rel("b", "0.1", 3)),
			releases(rel("a", "2.0", 12)),
		},
		releases: []releaseWant{{"a", "2.0", 12, true}, {"b", "0.1", 3, true}},
	},
	{
		name:     "same app twice in one call: highest position wins",
		batches:  []hotBatch{releases(rel("a", "2.0", 12), rel("a", "1.0", 10))},
		releases: []releaseWant{{"a", "2.0", 12, true}},
	},
	{
		name:     "positions compared exactly beyond 2^53",
		batches:  []hotBatch{releases(rel("a", "1.0", 1<<60)), releases(rel("a", "2.0", 1<<60+1)), releases(rel("a", "1.0", 1<<60))},
		releases: []releaseWant{{"a", "2.0", 1<<60 + 1, true}},
	},
	{
		name:     "positions of different lengths compared as numbers",
		batches:  []hotBatch{releases(rel("a", "1.0", 99_999_999_999)), releases(rel("a", "2.0", 100_000_000_000)), releases(rel("a", "1.0", 99_999_999_999))},
		releases: []releaseWant{{"a", "2.0", 100_000_000_000, true}},
	},
}

var launchCases = []hotCase{
	{
		name:     "group applied",
		batches:  []hotBatch{launches(group("a", day1, 1, "x", "y", "x"))},
		launches: []launchWant{{"a", day1, 3, 2}, {"b", day1, 0, 0}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 3}}, day2: {}},
	},
	{
		name:     "same group again changes nothing",
		batches:  []hotBatch{launches(group("a", day1, 1, "x", "y", "x")), launches(group("a", day1, 1, "x", "y", "x"))},
		launches: []launchWant{{"a", day1, 3, 2}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 3}}},
	},
	{
		name:     "overlapping group counts only new positions",
		batches:  []hotBatch{launches(group("a", day1, 1, "x", "y", "z")), launches(group("a", day1, 2, "y", "z", "w", "v"))},
		launches: []launchWant{{"a", day1, 5, 5}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 5}}},
	},
	{
		name: "prefixes and subsets redelivered",
		batches: []hotBatch{
			launches(group("a", day1, 1, "p", "q", "r", "s", "t")),
			launches(group("a", day1, 1, "p", "q")),
			launches(group("a", day1, 3, "r")),
			launches(projections.LaunchGroup{AppID: "a", Day: day1, Positions: []uint64{2, 4}, Devices: []string{"q", "s"}}),
		},
		launches: []launchWant{{"a", day1, 5, 5}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 5}}},
	},
	{
		name:     "split then whole",
		batches:  []hotBatch{launches(group("a", day1, 1, "x", "y")), launches(group("a", day1, 3, "z")), launches(group("a", day1, 1, "x", "y", "z", "w"))},
		launches: []launchWant{{"a", day1, 4, 4}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 4}}},
	},
	{
		name:     "groups of one key in one call are merged, whatever their order",
		batches:  []hotBatch{launches(group("a", day1, 3, "z", "w"), group("a", day1, 1, "x", "y"), group("a", day1, 2, "y"))},
		launches: []launchWant{{"a", day1, 4, 4}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 4}}},
	},
	{
		name:     "unique devices exact for a small set",
		batches:  []hotBatch{launches(group("a", day1, 1, append(devices(50), devices(30)...)...))},
		launches: []launchWant{{"a", day1, 80, 50}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 80}}},
	},
	{
		name: "days are counted apart",
		batches: []hotBatch{
			launches(group("a", day1, 1, "x", "y"), group("a", day2, 3, "x")),
			launches(group("a", day2, 3, "x", "z")),
		},
		launches: []launchWant{{"a", day1, 2, 2}, {"a", day2, 2, 2}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 2}}, day2: {{AppID: "a", Launches: 2}}},
	},
	{
		name: "top of the day: exact scores under duplicates, ties by app id",
		batches: []hotBatch{
			launches(group("c", day1, 1, "x", "y"), group("b", day1, 1, "x", "y", "z"), group("a", day1, 5, "x")),
			launches(group("a", day1, 5, "x", "y"), group("d", day1, 9, "x"), group("c", day1, 1, "x", "y")),
			launches(group("b", day1, 2, "y", "z"), group("d", day1, 9, "x")),
		},
		launches: []launchWant{{"a", day1, 2, 2}, {"b", day1, 3, 3}, {"c", day1, 2, 2}, {"d", day1, 1, 1}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "b", Launches: 3}, {AppID: "a", Launches: 2}, {AppID: "c", Launches: 2}, {AppID: "d", Launches: 1}}},
	},
	{
		name: "releases and launches in one call",
		batches: []hotBatch{
			{releases: []projections.ReleaseChange{rel("a", "1.0", 4)}, launches: []projections.LaunchGroup{group("a", day1, 5, "x"), group("b", day1, 1, "x")}},
			{releases: []projections.ReleaseChange{rel("a", "1.0", 4)}, launches: []projections.LaunchGroup{group("a", day1, 5, "x", "y")}},
		},
		releases: []releaseWant{{"a", "1.0", 4, true}},
		launches: []launchWant{{"a", day1, 2, 2}, {"b", day1, 1, 1}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 2}, {AppID: "b", Launches: 1}}},
	},
}

func TestApplyHot(t *testing.T) {
	cases := slices.Concat(releaseCases, launchCases)
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				// Each case writes into a key space of its own.
				runHotCase(t, newStore(t, client, fmt.Sprintf("case%d", i)), tc)
			})
		}
	})
}

func runHotCase(t *testing.T, s *Store, tc hotCase) {
	ctx := timeout(t)
	for i, b := range tc.batches {
		if err := s.ApplyHot(ctx, b.releases, b.launches); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	for _, w := range tc.releases {
		version, pos, found, err := s.Release(ctx, w.app)
		if err != nil {
			t.Fatalf("release of %s: %v", w.app, err)
		}
		if version != w.version || pos != w.pos || found != w.found {
			t.Errorf("release of %s = %q@%d found=%v, want %q@%d found=%v", w.app, version, pos, found, w.version, w.pos, w.found)
		}
	}
	for _, w := range tc.launches {
		n, uniq, err := s.Launches(ctx, w.app, w.day)
		if err != nil {
			t.Fatalf("launches of %s on %s: %v", w.app, w.day, err)
		}
		if n != w.n || uniq != w.uniq {
			t.Errorf("launches of %s on %s = %d (%d devices), want %d (%d devices)", w.app, w.day, n, uniq, w.n, w.uniq)
		}
	}
	for day, want := range tc.top {
		got, err := s.Top(ctx, day, 100)
		if err != nil {
			t.Fatalf("top of %s: %v", day, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("top of %s = %v, want %v", day, got, want)
		}
	}
}

// TestApplyHotOneRoundTrip: once the scripts are cached, a call is one pipeline.
func TestApplyHotOneRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		counter := &countingClient{CommandClient: client}
		s := newStore(t, counter, "")
		batch := []projections.LaunchGroup{group("a", day1, 1, "x"), group("b", day1, 2, "y"), group("a", day2, 3, "z")}
		if err := s.ApplyHot(ctx, []projections.ReleaseChange{rel("a", "1.0", 1)}, batch); err != nil {
			t.Fatal(err)
		}
		counter.do.Store(0)
		counter.doMulti.Store(0)
		batch = []projections.LaunchGroup{group("a", day1, 4, "x"), group("c", day1, 5, "y"), group("a", day2, 6, "z")}
		if err := s.ApplyHot(ctx, []projections.ReleaseChange{rel("a", "2.0", 7), rel("b", "1.0", 8)}, batch); err != nil {
			t.Fatal(err)
		}
		if do, multi := counter.do.Load(), counter.doMulti.Load(); do != 0 || multi != 1 {
			t.Errorf("ApplyHot made %d Do and %d DoMulti calls, want one DoMulti", do, multi)
		}
	})
}

// TestApplyHotNoScript: a server that lost its script cache (SCRIPT FLUSH,
// a restart) still applies the batch, exactly once.
func TestApplyHotNoScript(t *testing.T) {
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		s := newStore(t, client, "")
		steps := []projections.LaunchGroup{group("a", day1, 1, "x", "y"), group("a", day1, 2, "y", "z")}
		for i, g := range steps {
			if err := client.Do(ctx, client.B().ScriptFlush().Build()).Error(); err != nil {
				t.Fatalf("script flush: %v", err)
			}
			if err := s.ApplyHot(ctx, []projections.ReleaseChange{rel("a", "1.0", uint64(i+1))}, []projections.LaunchGroup{g}); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		runHotCase(t, s, hotCase{
			releases: []releaseWant{{"a", "1.0", 2, true}},
			launches: []launchWant{{"a", day1, 3, 3}},
			top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 3}}},
		})
	})
}

// TestApplyHotScriptError: an error inside the pipeline is returned, and the
// batch can be retried once the cause is gone.
func TestApplyHotScriptError(t *testing.T) {
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		s := newStore(t, client, "")
		key := s.keys.release("a")
		if err := client.Do(ctx, client.B().Set().Key(key).Value("not a hash").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		rs, gs := []projections.ReleaseChange{rel("a", "1.0", 3)}, []projections.LaunchGroup{group("a", day1, 1, "x", "y")}
		err := s.ApplyHot(ctx, rs, gs)
		var redisErr *rueidis.RedisError
		if !errors.As(err, &redisErr) || !strings.Contains(err.Error(), "WRONGTYPE") || !strings.Contains(err.Error(), key) {
			t.Fatalf("ApplyHot over a string key: err = %v, want a WRONGTYPE Redis error naming %s", err, key)
		}
		if err := client.Do(ctx, client.B().Del().Key(key).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		if err := s.ApplyHot(ctx, rs, gs); err != nil {
			t.Fatalf("retry: %v", err)
		}
		runHotCase(t, s, hotCase{
			releases: []releaseWant{{"a", "1.0", 3, true}},
			launches: []launchWant{{"a", day1, 2, 2}},
			top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 2}}},
		})
	})
}

// TestApplyHotLargeGroup: a group far larger than a Lua unpack can take at
// once is counted exactly; its devices are estimated within HyperLogLog's error.
func TestApplyHotLargeGroup(t *testing.T) {
	const launches, distinct = 20_000, 3_000
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		s := newStore(t, client, "")
		devs := devices(distinct)
		g := projections.LaunchGroup{AppID: "a", Day: day1}
		for i := range launches {
			g.Positions = append(g.Positions, uint64(i+1))
			g.Devices = append(g.Devices, devs[i%distinct])
		}
		for range 2 {
			if err := s.ApplyHot(ctx, nil, []projections.LaunchGroup{g}); err != nil {
				t.Fatal(err)
			}
		}
		n, uniq, err := s.Launches(ctx, "a", day1)
		if err != nil {
			t.Fatal(err)
		}
		if n != launches || uniq < distinct*98/100 || uniq > distinct*102/100 {
			t.Errorf("launches = %d (%d devices), want %d (%d±2%% devices)", n, uniq, launches, distinct)
		}
		if top, err := s.Top(ctx, day1, 1); err != nil || !slices.Equal(top, []projections.AppCount{{AppID: "a", Launches: launches}}) {
			t.Errorf("top = %v, %v", top, err)
		}
	})
}
