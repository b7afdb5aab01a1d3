package platform

import (
	"context"
	"maps"
	"testing"
)

// ownOnly knows only its own partitions, as a Kafka group member does.
type ownOnly struct{}

func (ownOnly) Start() error         { return nil }
func (ownOnly) Stop(context.Context) {}
func (ownOnly) Replica() string      { return "r1" }
func (ownOnly) Owned() []int         { return nil }
func (ownOnly) Takeovers() uint64    { return 0 }

// leaseTable also knows the other replicas' partitions.
type leaseTable struct {
	ownOnly
	all map[int]string
}

func (l leaseTable) Owners() map[int]string { return maps.Clone(l.all) }

func TestStatusOwners(t *testing.T) {
	for _, tc := range []struct {
		name  string
		owner Ownership
		owned []int
		want  map[int]string
	}{
		{"own partitions only", ownOnly{}, []int{0, 2}, map[int]string{0: "r1", 2: "r1"}},
		{"none owned", ownOnly{}, nil, map[int]string{}},
		{"lease table", leaseTable{all: map[int]string{1: "r2", 3: "r3"}}, []int{0}, map[int]string{0: "r1", 1: "r2", 3: "r3"}},
		// This replica's own view wins over a lease table that lags
		// behind it, so Owners agrees with Owned.
		{"own view wins", leaseTable{all: map[int]string{0: "r2"}}, []int{0}, map[int]string{0: "r1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := owners(tc.owner, tc.owned); !maps.Equal(got, tc.want) {
				t.Fatalf("owners = %v, want %v", got, tc.want)
			}
		})
	}
}
