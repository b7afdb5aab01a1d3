package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// maxLaunchRounds bounds the write-and-read-back rounds of one bulk of
// launch counters. Without a concurrent writer two rounds suffice.
const maxLaunchRounds = 8

// dailyStat is a daily_stats document (field names in names.go).
type dailyStat struct {
	ID       string `bson:"_id"`
	AppID    string `bson:"app_id"`
	Day      string `bson:"day"`
	Tenant   string `bson:"tenant"`
	Launches int64  `bson:"launches"`
	Pos      int64  `bson:"pos"`
}

// dailyID is the _id of the counter of app on day.
func dailyID(appID, day string) string { return appID + ":" + day }

// AddDailyLaunches implements [projections.DocStore]. The counter of an
// (app, day) is exact under any redelivery because it only ever counts a
// prefix of that pair's positions: the stored pos is the highest position
// counted, and every position at or below it has been counted.
//
// Each group becomes one upsert filtered on {_id, pos: {$lt: first}}, where
// first is the group's lowest position not yet counted: it adds the
// uncounted positions and sets pos to the group's last. If the stored pos
// is at or above first, the filter does not match and the upsert fails
// with a duplicate key. That condition is as exact as filtering on the
// stored pos itself, and also lets a counter another writer moved forward,
// but not past first, be updated without a retry.
//
// The upserts of up to [Config.MaxBulk] groups go in one unordered bulk,
// which is all it takes when nothing was applied before. After a
// duplicate key the store re-reads the stored pos of every group of the
// bulk, keeps only the positions above it, and writes again what remains.
// It re-reads the whole bulk, not only the failed operations, because
// FerretDB stops an update bulk at its first failure and reports it at
// index 0. After a few rounds lost to concurrent writers it gives up with
// an error wrapping [events.ErrConflict]; the caller retries the batch.
//
// Groups of the same (app, day) are merged first, so one bulk never holds
// two upserts of one counter. Groups without positions are ignored.
func (s *Store) AddDailyLaunches(ctx context.Context, groups []projections.LaunchGroup) error {
	defer s.serialize()()
	writes, err := launchWrites(groups)
	if err != nil {
		return fmt.Errorf("mongo: daily launches: %w", err)
	}
	for chunk := range slices.Chunk(writes, s.cfg.MaxBulk) {
		if err := s.addLaunches(ctx, chunk); err != nil {
			return err
		}
	}
	return nil
}

// DailyLaunches returns the number of launches of appID on day (YYYY-MM-DD,
// UTC), 0 when none were counted.
func (s *Store) DailyLaunches(ctx context.Context, appID, day string) (int64, error) {
	var d dailyStat
	err := s.dailyStats.FindOne(ctx, bson.D{{Key: fieldID, Value: dailyID(appID, day)}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("mongo: daily launches of %q on %s: %w", appID, day, err)
	}
	return d.Launches, nil
}

// addLaunches writes one bulk of counters until every group is counted.
// With [Config.KeyOnly] it reads the stored positions first and writes
// what they have not counted, by _id alone.
func (s *Store) addLaunches(ctx context.Context, pending []launchWrite) error {
	if s.cfg.KeyOnly {
		var err error
		if pending, err = s.uncounted(ctx, pending); err != nil || len(pending) == 0 {
			return err
		}
	}
	for round := 1; ; round++ {
		conflict, err := s.writeLaunches(ctx, pending)
		if err != nil || !conflict {
			return err
		}
		if round == maxLaunchRounds {
			return fmt.Errorf("mongo: daily launches %s and %d more: %d rounds: %w",
				pending[0].id, len(pending)-1, round, events.ErrConflict)
		}
		if pending, err = s.uncounted(ctx, pending); err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
	}
}

// writeLaunches sends one bulk of upserts. conflict reports that some
// failed on a duplicate key, so what was applied must be read back.
func (s *Store) writeLaunches(ctx context.Context, ws []launchWrite) (conflict bool, err error) {
	models := make([]mongo.WriteModel, len(ws))
	for i := range ws {
		models[i] = ws[i].model(s.cfg.KeyOnly)
	}
	_, err = s.dailyStats.BulkWrite(ctx, models, unordered())
	if err == nil {
		return false, nil
	}
	if _, ok := dupKeyIndexes(err); ok {
		return true, nil
	}
	return false, fmt.Errorf("mongo: daily launches: %d upserts: %w", len(ws), err)
}

// uncounted re-reads the stored pos of each write's counter and returns the
// writes that still have positions above it, trimmed to those positions.
func (s *Store) uncounted(ctx context.Context, ws []launchWrite) ([]launchWrite, error) {
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.id
	}
	stored, err := s.positions(ctx, s.dailyStats, ids)
	if err != nil {
		return nil, fmt.Errorf("mongo: daily launches: read back %d counters: %w", len(ids), err)
	}
	var out []launchWrite
	for _, w := range ws {
		if pos, ok := stored[w.id]; ok {
			w = w.above(pos)
		}
		if len(w.positions) > 0 {
			out = append(out, w)
		}
	}
	return out, nil
}

// launchWrite is what remains to be counted of one launch group.
type launchWrite struct {
	id    string
	group *projections.LaunchGroup
	// positions are the group's positions not known to be counted, increasing.
	positions []int64
}

// launchWrites turns groups into one write per counter, in order of first
// appearance, with its positions sorted and without duplicates.
func launchWrites(groups []projections.LaunchGroup) ([]launchWrite, error) {
	var out []launchWrite
	index := map[string]int{}
	for i := range groups {
		g := &groups[i]
		if len(g.Positions) == 0 {
			continue
		}
		id := dailyID(g.AppID, g.Day)
		j, seen := index[id]
		if !seen {
			j = len(out)
			index[id] = j
			out = append(out, launchWrite{id: id, group: g})
		}
		for _, p := range g.Positions {
			pos, err := position(p)
			if err != nil {
				return nil, fmt.Errorf("counter %s: %w", id, err)
			}
			out[j].positions = append(out[j].positions, pos)
		}
	}
	for i := range out {
		slices.Sort(out[i].positions)
		out[i].positions = slices.Compact(out[i].positions)
	}
	return out, nil
}

// above returns w without the positions at or below stored.
func (w launchWrite) above(stored int64) launchWrite {
	i := sort.Search(len(w.positions), func(i int) bool { return w.positions[i] > stored })
	w.positions = w.positions[i:]
	return w
}

// model is the conditional upsert that counts w's positions; keyOnly
// leaves the condition out of the filter (the caller checked it).
func (w launchWrite) model(keyOnly bool) mongo.WriteModel {
	last := w.positions[len(w.positions)-1]
	filter := bson.D{{Key: fieldID, Value: w.id}}
	if !keyOnly {
		filter = append(filter, bson.E{Key: fieldPos, Value: bson.D{{Key: "$lt", Value: w.positions[0]}}})
	}
	update := bson.D{
		{Key: "$inc", Value: bson.D{{Key: fieldLaunches, Value: int64(len(w.positions))}}},
		{Key: "$set", Value: bson.D{
			{Key: fieldPos, Value: last},
			{Key: fieldAppID, Value: w.group.AppID},
			{Key: fieldDay, Value: w.group.Day},
			{Key: fieldTenant, Value: w.group.Tenant},
		}},
	}
	return mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(update).SetUpsert(true)
}
