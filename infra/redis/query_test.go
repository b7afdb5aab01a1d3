package redis

import (
	"slices"
	"testing"

	"github.com/redis/rueidis"

	"github.com/evflow/evflow/projections"
)

// TestTop: the first n by launches, ties broken by app id, also when the
// cut-off falls inside a tie.
func TestTop(t *testing.T) {
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		s := newStore(t, client, "")
		// a:1, b:3, c:3, d:3, e:5, f:3 on day1; z:9 on day2.
		counts := map[string]int{"a": 1, "b": 3, "c": 3, "d": 3, "e": 5, "f": 3}
		var groups []projections.LaunchGroup
		for _, app := range []string{"f", "e", "d", "c", "b", "a"} {
			groups = append(groups, group(app, day1, 1, devices(counts[app])...))
		}
		groups = append(groups, group("z", day2, 1, devices(9)...))
		for range 2 { // the redelivery changes nothing
			if err := s.ApplyHot(ctx, nil, groups); err != nil {
				t.Fatal(err)
			}
		}
		all := []projections.AppCount{{AppID: "e", Launches: 5}, {AppID: "b", Launches: 3}, {AppID: "c", Launches: 3}, {AppID: "d", Launches: 3}, {AppID: "f", Launches: 3}, {AppID: "a", Launches: 1}}
		for _, tc := range []struct {
			day  string
			n    int
			want []projections.AppCount
		}{
			{day1, 0, []projections.AppCount{}},
			{day1, 1, all[:1]},
			{day1, 2, all[:2]},
			{day1, 3, all[:3]},
			{day1, 5, all[:5]},
			{day1, 6, all},
			{day1, 100, all},
			{day2, 3, []projections.AppCount{{AppID: "z", Launches: 9}}},
			{"2026-01-01", 3, []projections.AppCount{}},
		} {
			got, err := s.Top(ctx, tc.day, tc.n)
			if err != nil {
				t.Fatalf("Top(%s, %d): %v", tc.day, tc.n, err)
			}
			if got == nil || !slices.Equal(got, tc.want) {
				t.Errorf("Top(%s, %d) = %#v, want %v", tc.day, tc.n, got, tc.want)
			}
		}
		if _, err := s.Top(ctx, day1, -1); err == nil {
			t.Error("Top with negative n: no error")
		}
	})
}

// TestPrefixSeparatesKeySpaces: a store under another prefix (a rebuild's
// shadow key space) neither sees nor changes the live one.
func TestPrefixSeparatesKeySpaces(t *testing.T) {
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		ctx := timeout(t)
		live, shadow := newStore(t, client, ""), newStore(t, client, "ev-shadow")
		if live.Prefix() != DefaultPrefix || shadow.Prefix() != "ev-shadow" {
			t.Fatalf("prefixes %q, %q", live.Prefix(), shadow.Prefix())
		}
		rs, gs := []projections.ReleaseChange{rel("a", "1.0", 5)}, []projections.LaunchGroup{group("a", day1, 1, "x")}
		if err := live.ApplyHot(ctx, rs, gs); err != nil {
			t.Fatal(err)
		}
		if err := live.SaveCheckpoint(ctx, projections.RedisName, 0, 5); err != nil {
			t.Fatal(err)
		}
		runHotCase(t, shadow, hotCase{
			releases: []releaseWant{{"a", "", 0, false}},
			launches: []launchWant{{"a", day1, 0, 0}},
			top:      map[string][]projections.AppCount{day1: {}},
		})
		if pos, err := shadow.Checkpoint(ctx, projections.RedisName, 0); err != nil || pos != 0 {
			t.Errorf("shadow checkpoint = %d, %v; want 0", pos, err)
		}
		keys, err := client.Do(ctx, client.B().Keys().Pattern("*").Build()).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if len(k) < 3 || k[:3] != "ev:" {
				t.Errorf("key %q outside the prefix", k)
			}
		}
	})
}
