package projections

import "github.com/evflow/evflow/events"

// LaunchGroup is the launches of one app on one day within a batch,
// coalesced so a store applies them in one conditional write. Positions are
// increasing; Devices[i] launched at Positions[i]. A store counts only the
// positions above the one it holds for (AppID, Day).
type LaunchGroup struct {
	AppID     string
	Day       string
	Tenant    string
	Positions []uint64
	Devices   []string
}

// Last is the highest position in the group.
func (g *LaunchGroup) Last() uint64 { return g.Positions[len(g.Positions)-1] }

// GroupLaunches coalesces the app.launched events of an ordered batch by
// (app, day), keeping the order of first appearance.
func GroupLaunches(batch []Event) []LaunchGroup {
	var groups []LaunchGroup
	index := map[[2]string]int{}
	for _, e := range batch {
		l, ok := e.Payload.(*events.AppLaunched)
		if !ok {
			continue
		}
		k := [2]string{l.AppID, l.Day()}
		i, seen := index[k]
		if !seen {
			i = len(groups)
			index[k] = i
			groups = append(groups, LaunchGroup{AppID: l.AppID, Day: k[1], Tenant: e.Tenant})
		}
		groups[i].Positions = append(groups[i].Positions, e.Position)
		groups[i].Devices = append(groups[i].Devices, l.DeviceID)
	}
	return groups
}

// AppCount is an app and its launches on a day: an entry of the top apps.
type AppCount struct {
	AppID    string `json:"app_id"`
	Launches int64  `json:"launches"`
}
