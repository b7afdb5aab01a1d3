package redis

import (
	"strconv"
	"testing"

	"github.com/redis/rueidis"
)

func TestCheckpointMonotonic(t *testing.T) {
	type save struct {
		projection string
		partition  int
		pos        uint64
	}
	type want struct {
		projection string
		partition  int
		pos        uint64
	}
	cases := []struct {
		name  string
		saves []save
		want  []want
	}{
		{"none saved", nil, []want{{"redis", 0, 0}}},
		{"saved", []save{{"redis", 0, 5}}, []want{{"redis", 0, 5}}},
		{"raised", []save{{"redis", 0, 5}, {"redis", 0, 7}}, []want{{"redis", 0, 7}}},
		{"never lowered", []save{{"redis", 0, 7}, {"redis", 0, 3}, {"redis", 0, 7}}, []want{{"redis", 0, 7}}},
		{"zero changes nothing", []save{{"redis", 0, 7}, {"redis", 0, 0}}, []want{{"redis", 0, 7}}},
		{
			"partitions and projections apart",
			[]save{{"redis", 0, 9}, {"redis", 1, 4}, {"mongo", 0, 2}},
			[]want{{"redis", 0, 9}, {"redis", 1, 4}, {"redis", 2, 0}, {"mongo", 0, 2}, {"mongo", 1, 0}},
		},
		{
			"compared as numbers across lengths and beyond 2^53",
			[]save{{"redis", 0, 9_999_999_999}, {"redis", 0, 10_000_000_000}, {"redis", 1, 1 << 62}, {"redis", 1, 1<<62 + 1}, {"redis", 1, 1 << 62}},
			[]want{{"redis", 0, 10_000_000_000}, {"redis", 1, 1<<62 + 1}},
		},
		{"max uint64", []save{{"redis", 0, 1<<64 - 2}, {"redis", 0, 1<<64 - 1}}, []want{{"redis", 0, 1<<64 - 1}}},
	}
	forEachBackend(t, func(t *testing.T, client rueidis.Client) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := timeout(t)
				s := newStore(t, client, "ckpt"+strconv.Itoa(i))
				for _, sv := range tc.saves {
					if err := s.SaveCheckpoint(ctx, sv.projection, sv.partition, sv.pos); err != nil {
						t.Fatal(err)
					}
				}
				for _, w := range tc.want {
					got, err := s.Checkpoint(ctx, w.projection, w.partition)
					if err != nil {
						t.Fatal(err)
					}
					if got != w.pos {
						t.Errorf("Checkpoint(%s, %d) = %d, want %d", w.projection, w.partition, got, w.pos)
					}
				}
			})
		}
	})
}
