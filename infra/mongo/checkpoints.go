package mongo

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// checkpoint is a checkpoints document (field names in names.go).
type checkpoint struct {
	ID         string `bson:"_id"`
	Projection string `bson:"projection"`
	Partition  int    `bson:"partition"`
	Pos        int64  `bson:"pos"`
}

// checkpointID is the _id of the checkpoint of projection on partition.
func checkpointID(projection string, partition int) string {
	return projection + ":" + strconv.Itoa(partition)
}

// Checkpoint implements [projections.Checkpoints]: the stored position of
// projection on partition, 0 when there is none.
func (s *Store) Checkpoint(ctx context.Context, projection string, partition int) (uint64, error) {
	id := checkpointID(projection, partition)
	var c checkpoint
	err := s.checkpoints.FindOne(ctx, bson.D{{Key: fieldID, Value: id}}).Decode(&c)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("mongo: checkpoint %s: %w", id, err)
	case c.Pos < 0:
		return 0, fmt.Errorf("mongo: checkpoint %s: negative position %d", id, c.Pos)
	}
	return uint64(c.Pos), nil
}

// SaveCheckpoint implements [projections.Checkpoints] with one upsert
// filtered on a stored pos below pos. If the checkpoint is already at or
// above pos the upsert fails with a duplicate key, which means there is
// nothing to do: it returns nil and the checkpoint does not move backwards.
// With [Config.KeyOnly] it reads the checkpoint first and upserts by _id
// alone when pos is above it.
func (s *Store) SaveCheckpoint(ctx context.Context, projection string, partition int, pos uint64) error {
	defer s.serialize()()
	id := checkpointID(projection, partition)
	p, err := position(pos)
	if err != nil {
		return fmt.Errorf("mongo: save checkpoint %s: %w", id, err)
	}
	filter := bson.D{{Key: fieldID, Value: id}}
	if s.cfg.KeyOnly {
		stored, err := s.Checkpoint(ctx, projection, partition)
		if err != nil {
			return err
		}
		if stored >= pos {
			return nil
		}
	} else {
		filter = append(filter, bson.E{Key: fieldPos, Value: bson.D{{Key: "$lt", Value: p}}})
	}
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: fieldPos, Value: p},
		{Key: fieldProjection, Value: projection},
		{Key: fieldPartition, Value: partition},
	}}}
	_, err = s.checkpoints.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("mongo: save checkpoint %s at %d: %w", id, pos, err)
	}
	return nil
}
