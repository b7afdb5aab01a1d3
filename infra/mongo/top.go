package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evflow/evflow/projections"
)

// TopDaily returns up to n apps with the most launches on day (YYYY-MM-DD,
// UTC), by launches descending, then app id ascending, as the Redis
// projection's top apps are ordered. It reads daily_stats with one find on
// day, a scan of the collection (there is no index on day; FerretDB would
// scan anyway), for use while the Redis projection is rebuilt. It is empty
// (not nil) when n is 0 or nothing was counted that day; a negative n is
// an error.
func (s *Store) TopDaily(ctx context.Context, day string, n int) ([]projections.AppCount, error) {
	if n < 0 {
		return nil, errors.New("mongo: top apps: n must not be negative")
	}
	out := []projections.AppCount{}
	if n == 0 {
		return out, nil
	}
	opts := options.Find().
		SetSort(bson.D{{Key: fieldLaunches, Value: -1}, {Key: fieldAppID, Value: 1}}).
		SetLimit(int64(n)).
		SetProjection(bson.D{{Key: fieldAppID, Value: 1}, {Key: fieldLaunches, Value: 1}})
	cur, err := s.dailyStats.Find(ctx, bson.D{{Key: fieldDay, Value: day}}, opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: top apps of %s: %w", day, err)
	}
	var docs []dailyStat
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: top apps of %s: %w", day, err)
	}
	for _, d := range docs {
		out = append(out, projections.AppCount{AppID: d.AppID, Launches: d.Launches})
	}
	return out, nil
}

// Checkpoints returns the stored position of projection on every partition
// that has one, to tell when a generation has caught up. It reads the
// checkpoints with one find on their projection field.
func (s *Store) Checkpoints(ctx context.Context, projection string) (map[int]uint64, error) {
	cur, err := s.checkpoints.Find(ctx, bson.D{{Key: fieldProjection, Value: projection}})
	if err != nil {
		return nil, fmt.Errorf("mongo: checkpoints of %s: %w", projection, err)
	}
	var docs []checkpoint
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: checkpoints of %s: %w", projection, err)
	}
	out := make(map[int]uint64, len(docs))
	for _, c := range docs {
		if c.Pos < 0 {
			return nil, fmt.Errorf("mongo: checkpoint %s: negative position %d", c.ID, c.Pos)
		}
		out[c.Partition] = uint64(c.Pos)
	}
	return out, nil
}
