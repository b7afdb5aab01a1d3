package redis

import (
	"github.com/evflow/evflow/projections"

	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/rueidis"
)

// Release returns an app's current release ("" for none) and the position
// of the event that set it. found is false when no release event of the app
// has been projected.
func (s *Store) Release(ctx context.Context, appID string) (version string, pos uint64, found bool, err error) {
	cmd := s.client.B().Hmget().Key(s.keys.release(appID)).Field(fieldVersion, fieldPos).Build()
	vals, err := s.client.Do(ctx, cmd).ToArray()
	if err != nil {
		return "", 0, false, fmt.Errorf("read release of %s: %w", appID, err)
	}
	if len(vals) != 2 {
		return "", 0, false, fmt.Errorf("read release of %s: %d values, want 2", appID, len(vals))
	}
	p, err := vals[1].ToString()
	if rueidis.IsRedisNil(err) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("read release of %s: position: %w", appID, err)
	}
	if pos, err = strconv.ParseUint(p, 10, 64); err != nil {
		return "", 0, false, fmt.Errorf("read release of %s: position %q: %w", appID, p, err)
	}
	if version, err = vals[0].ToString(); err != nil && !rueidis.IsRedisNil(err) {
		return "", 0, false, fmt.Errorf("read release of %s: version: %w", appID, err)
	}
	return version, pos, true, nil
}

// Launches returns an app's launch count on day (YYYY-MM-DD) and the
// estimated number of distinct devices (a HyperLogLog: exact for small
// sets, within about 1% for large ones). Both are 0 when nothing was counted.
func (s *Store) Launches(ctx context.Context, appID, day string) (count, uniqueDevices int64, err error) {
	b := s.client.B()
	res := s.client.DoMulti(ctx,
		b.Hget().Key(s.keys.launches(appID, day)).Field(fieldCount).Build(),
		b.Pfcount().Key(s.keys.devices(appID, day)).Build(),
	)
	if count, err = res[0].AsInt64(); err != nil && !rueidis.IsRedisNil(err) {
		return 0, 0, fmt.Errorf("read launches of %s on %s: %w", appID, day, err)
	}
	if uniqueDevices, err = res[1].AsInt64(); err != nil {
		return 0, 0, fmt.Errorf("read unique devices of %s on %s: %w", appID, day, err)
	}
	return count, uniqueDevices, nil
}

// LaunchCounts returns the launch count of each app of ids on day, in one
// pipelined round of HGETs (0 for an app with none).
func (s *Store) LaunchCounts(ctx context.Context, day string, ids []string) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	b := s.client.B()
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = b.Hget().Key(s.keys.launches(id, day)).Field(fieldCount).Build()
	}
	out := make([]int64, len(ids))
	for i, res := range s.client.DoMulti(ctx, cmds...) {
		n, err := res.AsInt64()
		if err != nil && !rueidis.IsRedisNil(err) {
			return nil, fmt.Errorf("read launches of %d apps on %s: %w", len(ids), day, err)
		}
		out[i] = n
	}
	return out, nil
}

// Top returns up to n apps with the most launches on day, by launches
// descending, then app id ascending. It is empty (not nil) when n is 0 or
// nothing was counted that day; a negative n is an error.
func (s *Store) Top(ctx context.Context, day string, n int) ([]projections.AppCount, error) {
	if n < 0 {
		return nil, errors.New("read top apps: n must not be negative")
	}
	out := []projections.AppCount{}
	if n == 0 {
		return out, nil
	}
	key := s.keys.top(day)
	b := s.client.B()
	first, err := s.client.Do(ctx, b.Zrevrange().Key(key).Start(0).Stop(int64(n-1)).Withscores().Build()).AsZScores()
	if err != nil {
		return nil, fmt.Errorf("read top apps of %s: %w", day, err)
	}
	if len(first) == n {
		// ZREVRANGE orders equal scores by member descending, so the apps
		// tied at the cut-off may not be the first by id. Keep the apps
		// above the cut-off score and take the tied ones again, by id
		// ascending, as ZRANGEBYSCORE orders them.
		cut := first[n-1].Score
		first = slices.DeleteFunc(first, func(z rueidis.ZScore) bool { return z.Score <= cut })
		score := strconv.FormatFloat(cut, 'f', -1, 64)
		cmd := b.Zrangebyscore().Key(key).Min(score).Max(score).Withscores().Limit(0, int64(n-len(first))).Build()
		tied, err := s.client.Do(ctx, cmd).AsZScores()
		if err != nil {
			return nil, fmt.Errorf("read top apps of %s: %w", day, err)
		}
		first = append(first, tied...)
	}
	for _, z := range first {
		out = append(out, projections.AppCount{AppID: z.Member, Launches: int64(z.Score)})
	}
	slices.SortFunc(out, func(a, b projections.AppCount) int {
		return cmp.Or(cmp.Compare(b.Launches, a.Launches), cmp.Compare(a.AppID, b.AppID))
	})
	return out, nil
}
