package ownership

import (
	"fmt"
	"slices"
	"testing"
)

func holders(n int, owners ...string) []string {
	out := make([]string, n)
	for p := range out {
		if len(owners) > 0 {
			out[p] = owners[p%len(owners)]
		}
	}
	return out
}

func counts(a []string) map[string]int {
	m := map[string]int{}
	for _, o := range a {
		m[o]++
	}
	return m
}

func TestAssignBalancesAndMovesOnlyWhatItMust(t *testing.T) {
	cases := []struct {
		name      string
		live      []string
		holders   []string
		wantCount map[string]int
		maxMoved  int
	}{
		{"nobody holds anything", []string{"b", "a", "c"}, holders(16), map[string]int{"a": 6, "b": 5, "c": 5}, 0},
		{"balanced stays put", []string{"a", "b", "c"}, holders(16, "a", "b", "c"), map[string]int{"a": 6, "b": 5, "c": 5}, 0},
		{"a replica joins", []string{"a", "b", "c"}, holders(16, "a", "b"), map[string]int{"a": 6, "b": 5, "c": 5}, 5},
		{"a replica leaves", []string{"b", "c"}, holders(16, "a", "b", "c"), map[string]int{"b": 8, "c": 8}, 0},
		{"a dead holder's partitions are orphans", []string{"a", "b"}, holders(16, "a", "b", "x", "y"), map[string]int{"a": 8, "b": 8}, 0},
		{"extra share goes to who holds most", []string{"a", "b", "c"}, append(holders(10, "c"), holders(6, "a", "b")...), map[string]int{"a": 5, "b": 5, "c": 6}, 4},
		{"alone", []string{"a"}, holders(4, "x"), map[string]int{"a": 4}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := assign(tc.live, tc.holders)
			if fmt.Sprint(counts(got)) != fmt.Sprint(tc.wantCount) {
				t.Fatalf("counts %v, want %v (%v)", counts(got), tc.wantCount, got)
			}
			// Moves of partitions from live holders to other live replicas.
			liveMoves := 0
			for p := range got {
				if slices.Contains(tc.live, tc.holders[p]) && tc.holders[p] != got[p] {
					liveMoves++
				}
			}
			if liveMoves > tc.maxMoved {
				t.Fatalf("moved %d partitions between live replicas, want at most %d (%v → %v)", liveMoves, tc.maxMoved, tc.holders, got)
			}
			again := assign(slices.Clone(tc.live), slices.Clone(tc.holders))
			if !slices.Equal(got, again) {
				t.Fatalf("assign is not deterministic: %v then %v", got, again)
			}
		})
	}
}
