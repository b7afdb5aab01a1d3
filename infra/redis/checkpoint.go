package redis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/rueidis"
)

// Checkpoint implements [projections.Checkpoints]: the position of the last
// batch projection applied on partition, 0 when none was recorded.
func (s *Store) Checkpoint(ctx context.Context, projection string, partition int) (uint64, error) {
	cmd := s.client.B().Hget().Key(s.keys.checkpoints(projection)).Field(partitionField(partition)).Build()
	v, err := s.client.Do(ctx, cmd).ToString()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read checkpoint %s/%d: %w", projection, partition, err)
	}
	pos, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read checkpoint %s/%d: stored value %q: %w", projection, partition, v, err)
	}
	return pos, nil
}

// SaveCheckpoint implements [projections.Checkpoints]. It raises the
// checkpoint to pos in one atomic step and never lowers it: saving a lower
// position (a late replica, a replay) changes nothing.
func (s *Store) SaveCheckpoint(ctx context.Context, projection string, partition int, pos uint64) error {
	err := s.execErr(ctx, []call{{
		script: scriptCheckpoint,
		keys:   []string{s.keys.checkpoints(projection)},
		args:   []string{partitionField(partition), strconv.FormatUint(pos, 10)},
	}})
	if err != nil {
		return fmt.Errorf("save checkpoint %s/%d@%d: %w", projection, partition, pos, err)
	}
	return nil
}
