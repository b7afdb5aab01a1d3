package redis

import (
	"reflect"
	"testing"

	"github.com/evflow/evflow/projections"
)

func TestMergeGroups(t *testing.T) {
	lg := func(app, day string, ps []uint64, ds ...string) projections.LaunchGroup {
		return projections.LaunchGroup{AppID: app, Day: day, Positions: ps, Devices: ds}
	}
	for _, tc := range []struct {
		name string
		in   []projections.LaunchGroup
		want []projections.LaunchGroup
	}{
		{"empty", nil, nil},
		{
			"ready groups kept",
			[]projections.LaunchGroup{lg("a", day1, []uint64{1, 2}, "x", "y"), lg("a", day2, []uint64{3}, "z")},
			[]projections.LaunchGroup{lg("a", day1, []uint64{1, 2}, "x", "y"), lg("a", day2, []uint64{3}, "z")},
		},
		{
			"same key merged in position order",
			[]projections.LaunchGroup{lg("a", day1, []uint64{5, 6}, "p", "q"), lg("b", day1, []uint64{2}, "r"), lg("a", day1, []uint64{1, 3}, "s", "t")},
			[]projections.LaunchGroup{lg("a", day1, []uint64{1, 3, 5, 6}, "s", "t", "p", "q"), lg("b", day1, []uint64{2}, "r")},
		},
		{
			"unsorted and repeated positions",
			[]projections.LaunchGroup{lg("a", day1, []uint64{4, 2, 2, 4}, "x", "y", "z", "w")},
			[]projections.LaunchGroup{lg("a", day1, []uint64{2, 4}, "y", "x")},
		},
		{
			"empty group dropped",
			[]projections.LaunchGroup{lg("a", day1, nil), lg("b", day1, []uint64{1}, "x")},
			[]projections.LaunchGroup{lg("b", day1, []uint64{1}, "x")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mergeGroups(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mergeGroups = %+v, want %+v", got, tc.want)
			}
		})
	}
}
