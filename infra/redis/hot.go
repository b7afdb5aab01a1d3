package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/evflow/evflow/projections"
)

// ApplyHot implements [projections.HotStore]. It sends every write of the
// call in one pipeline: per release change one script, per launch group one
// script for its counter and devices and one for the day's top apps. Each
// script writes only what lies above the position it finds stored, so the
// whole call may be retried after any error.
//
// Changes to the same app, and groups of the same (app, day), are merged
// first, so their order in the arguments does not matter. A group whose
// Positions and Devices differ in length, or an empty app id or day, fails
// the call before anything is sent.
func (s *Store) ApplyHot(ctx context.Context, releases []projections.ReleaseChange, launches []projections.LaunchGroup) error {
	groups, err := mergeGroups(launches)
	if err != nil {
		return fmt.Errorf("apply hot batch: %w", err)
	}
	calls := make([]call, 0, len(releases)+2*len(groups))
	for _, r := range mergeReleases(releases) {
		if r.AppID == "" {
			return errors.New("apply hot batch: release change without app id")
		}
		calls = append(calls, call{
			script: scriptRelease,
			keys:   []string{s.keys.release(r.AppID)},
			args:   []string{r.Version, strconv.FormatUint(r.Position, 10)},
		})
	}
	for _, g := range groups {
		calls = append(calls, s.launchCalls(g)...)
	}
	if len(calls) == 0 {
		return nil
	}
	if err := s.execErr(ctx, calls); err != nil {
		return fmt.Errorf("apply hot batch: %w", err)
	}
	return nil
}

// launchCalls returns the counter/devices call and the top-apps call of a group.
func (s *Store) launchCalls(g projections.LaunchGroup) []call {
	pairs := make([]string, 0, 2*len(g.Positions))
	top := make([]string, 0, 1+len(g.Positions))
	top = append(top, g.AppID)
	for i, p := range g.Positions {
		pos := strconv.FormatUint(p, 10)
		pairs = append(pairs, pos, g.Devices[i])
		top = append(top, pos)
	}
	return []call{
		{
			script: scriptLaunches,
			keys:   []string{s.keys.launches(g.AppID, g.Day), s.keys.devices(g.AppID, g.Day)},
			args:   pairs,
		},
		{
			script: scriptTop,
			keys:   []string{s.keys.top(g.Day), s.keys.topGuard(g.Day)},
			args:   top,
		},
	}
}

// mergeReleases keeps, per app, the change with the highest position, in
// order of first appearance: applying only it has the effect of applying all.
func mergeReleases(in []projections.ReleaseChange) []projections.ReleaseChange {
	out := make([]projections.ReleaseChange, 0, len(in))
	index := make(map[string]int, len(in))
	for _, r := range in {
		i, seen := index[r.AppID]
		switch {
		case !seen:
			index[r.AppID] = len(out)
			out = append(out, r)
		case r.Position > out[i].Position:
			out[i] = r
		}
	}
	return out
}

// mergeGroups validates groups and returns them ready to send: each
// (app, day) once, positions strictly increasing (a repeated position is
// one launch), no empty group. Groups already in that shape, the output of
// [projections.GroupLaunches], are returned as they are.
func mergeGroups(in []projections.LaunchGroup) ([]projections.LaunchGroup, error) {
	ready := true
	seen := make(map[[2]string]bool, len(in))
	for _, g := range in {
		if len(g.Positions) != len(g.Devices) {
			return nil, fmt.Errorf("launch group %s/%s: %d positions but %d devices", g.AppID, g.Day, len(g.Positions), len(g.Devices))
		}
		if g.AppID == "" || g.Day == "" {
			return nil, fmt.Errorf("launch group %q/%q: app id and day are required", g.AppID, g.Day)
		}
		k := [2]string{g.AppID, g.Day}
		ready = ready && !seen[k] && len(g.Positions) > 0 && increasing(g.Positions)
		seen[k] = true
	}
	if ready {
		return in, nil
	}
	return merge(in), nil
}

func increasing(ps []uint64) bool {
	for i := 1; i < len(ps); i++ {
		if ps[i] <= ps[i-1] {
			return false
		}
	}
	return true
}

// launch is one launch of a group.
type launch struct {
	pos    uint64
	device string
}

// merge merges the groups of the same (app, day), in order of first
// appearance, sorting their launches by position and dropping repeats.
func merge(in []projections.LaunchGroup) []projections.LaunchGroup {
	var out []projections.LaunchGroup
	var launches [][]launch
	index := map[[2]string]int{}
	for _, g := range in {
		if len(g.Positions) == 0 {
			continue
		}
		k := [2]string{g.AppID, g.Day}
		i, seen := index[k]
		if !seen {
			i = len(out)
			index[k] = i
			out = append(out, projections.LaunchGroup{AppID: g.AppID, Day: g.Day, Tenant: g.Tenant})
			launches = append(launches, nil)
		}
		for j, p := range g.Positions {
			launches[i] = append(launches[i], launch{pos: p, device: g.Devices[j]})
		}
	}
	for i, ls := range launches {
		slices.SortStableFunc(ls, func(a, b launch) int { return cmp.Compare(a.pos, b.pos) })
		ls = slices.CompactFunc(ls, func(a, b launch) bool { return a.pos == b.pos })
		out[i].Positions = make([]uint64, len(ls))
		out[i].Devices = make([]string, len(ls))
		for j, l := range ls {
			out[i].Positions[j], out[i].Devices[j] = l.pos, l.device
		}
	}
	return out
}
