package projections

import (
	"reflect"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
)

func TestGroupLaunches(t *testing.T) {
	day1 := time.Date(2024, 3, 10, 9, 0, 0, 0, time.UTC)
	day2 := day1.Add(24 * time.Hour)
	west := time.FixedZone("UTC-2", -2*3600)
	east := time.FixedZone("UTC+2", 2*3600)
	tests := []struct {
		name  string
		batch []Event
		want  []LaunchGroup
	}{
		{"empty", nil, nil},
		{"no launches", []Event{
			appEv(1, "app-1", &events.AppCreated{Name: "x"}),
			appEv(2, "app-1", &events.ReleasePublished{Version: "1"}),
		}, nil},
		{"by app and day in order of first appearance", []Event{
			launchEv(1, "app-1", "dev-a", day1),
			launchEv(2, "app-2", "dev-b", day1),
			appEv(3, "app-3", &events.AppCreated{Name: "ignored"}),
			launchEv(4, "app-1", "dev-c", day1.Add(time.Hour)),
			launchEv(5, "app-1", "dev-a", day2),
			launchEv(6, "app-2", "dev-b", day1),
			launchEv(7, "app-1", "dev-a", day1),
		}, []LaunchGroup{
			{AppID: "app-1", Day: "2024-03-10", Tenant: "org-1", Positions: []uint64{1, 4, 7}, Devices: []string{"dev-a", "dev-c", "dev-a"}},
			{AppID: "app-2", Day: "2024-03-10", Tenant: "org-1", Positions: []uint64{2, 6}, Devices: []string{"dev-b", "dev-b"}},
			{AppID: "app-1", Day: "2024-03-11", Tenant: "org-1", Positions: []uint64{5}, Devices: []string{"dev-a"}},
		}},
		{"day is the UTC day", []Event{
			// 23:30 at -02:00 is 01:30 UTC the next day.
			launchEv(1, "app-1", "dev-a", time.Date(2024, 3, 10, 23, 30, 0, 0, west)),
			launchEv(2, "app-1", "dev-b", time.Date(2024, 3, 11, 0, 15, 0, 0, time.UTC)),
			// 01:00 at +02:00 is 23:00 UTC the previous day.
			launchEv(3, "app-1", "dev-c", time.Date(2024, 3, 11, 1, 0, 0, 0, east)),
		}, []LaunchGroup{
			{AppID: "app-1", Day: "2024-03-11", Tenant: "org-1", Positions: []uint64{1, 2}, Devices: []string{"dev-a", "dev-b"}},
			{AppID: "app-1", Day: "2024-03-10", Tenant: "org-1", Positions: []uint64{3}, Devices: []string{"dev-c"}},
		}},
		{"day from the launch, not the envelope", []Event{
			func() Event {
				e := launchEv(1, "app-1", "dev-a", day1)
				e.OccurredAt = day2 // received a day later
				return e
			}(),
		}, []LaunchGroup{
			{AppID: "app-1", Day: "2024-03-10", Tenant: "org-1", Positions: []uint64{1}, Devices: []string{"dev-a"}},
		}},
		{"tenant of the envelope", []Event{
			func() Event {
				e := launchEv(1, "app-1", "dev-a", day1)
				e.Tenant = "org-owner"
				return e
			}(),
		}, []LaunchGroup{
			{AppID: "app-1", Day: "2024-03-10", Tenant: "org-owner", Positions: []uint64{1}, Devices: []string{"dev-a"}},
		}},
		{"launch payload by value is not a launch", []Event{
			func() Event {
				e := launchEv(1, "app-1", "dev-a", day1)
				e.Payload = *e.Payload.(*events.AppLaunched)
				return e
			}(),
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := GroupLaunches(tt.batch)
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("GroupLaunches() =\n %+v\nwant\n %+v", got, tt.want)
			}
			for _, g := range got {
				if len(g.Positions) != len(g.Devices) {
					t.Errorf("group %s/%s: %d positions, %d devices", g.AppID, g.Day, len(g.Positions), len(g.Devices))
				}
				if g.Last() != g.Positions[len(g.Positions)-1] {
					t.Errorf("Last() = %d", g.Last())
				}
			}
		})
	}
}

func TestLaunchGroupLast(t *testing.T) {
	g := LaunchGroup{Positions: []uint64{3, 9, 27}}
	if got := g.Last(); got != 27 {
		t.Fatalf("Last() = %d, want 27", got)
	}
}
