package redis

import (
	"fmt"
	"testing"

	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

// BenchmarkApplyHot measures launches applied per second against a real
// redis-server, in batches shaped like a partition's: 100 launches of 20
// apps on one day, so 40 script calls per pipeline.
func BenchmarkApplyHot(b *testing.B) {
	const apps, perApp = 20, 5
	s := newStore(b, connect(b, testenv.StartRedis(b).Addr), "")
	ctx := testenv.Context(b)
	var pos uint64
	b.ResetTimer()
	for b.Loop() {
		groups := make([]projections.LaunchGroup, apps)
		for a := range groups {
			groups[a] = projections.LaunchGroup{AppID: fmt.Sprintf("app%d", a), Day: day1}
			for range perApp {
				pos++
				groups[a].Positions = append(groups[a].Positions, pos)
				groups[a].Devices = append(groups[a].Devices, fmt.Sprintf("dev%d", pos%1000))
			}
		}
		if err := s.ApplyHot(ctx, nil, groups); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*apps*perApp)/b.Elapsed().Seconds(), "launches/s")
}
