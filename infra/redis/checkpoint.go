package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

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
	c := call{
		script: scriptCheckpoint,
		keys:   []string{s.keys.checkpoints(projection)},
		args:   []string{partitionField(partition), strconv.FormatUint(pos, 10)},
	}
	var err error
	if s.cfg.WaitReplicas == 0 {
		err = s.execErr(ctx, []call{c})
	} else {
		err = s.saveAndWait(ctx, c)
	}
	if err != nil {
		return fmt.Errorf("save checkpoint %s/%d@%d: %w", projection, partition, pos, err)
	}
	return nil
}

// saveAndWait runs c, then waits until [Config.WaitReplicas] replicas, or
// all those connected if fewer are, acknowledged it, and with it every
// write before it (replication is ordered). WAIT counts the writes of its
// own connection, so both go in one DoMulti, which rueidis sends on one
// dedicated connection because WAIT blocks.
func (s *Store) saveAndWait(ctx context.Context, c call) error {
	b := s.client.B()
	_, err := evalAndWait(ctx, s.client, b.Eval().Script(c.script.src).Numkeys(int64(len(c.keys))).Key(c.keys...).Arg(c.args...).Build(),
		s.cfg.WaitReplicas, s.cfg.WaitTimeout)
	return err
}

// evalAndWait runs cmd, then waits until want replicas, or all those
// connected if fewer are, acknowledged it, and with it every write before
// it (replication is ordered). WAIT counts the writes of its own
// connection, so both go in one DoMulti, which rueidis sends on one
// dedicated connection because WAIT blocks. It returns cmd's result.
func evalAndWait(ctx context.Context, client rueidis.CommandClient, cmd rueidis.Completed, replicas int, timeout time.Duration) (rueidis.RedisResult, error) {
	want := int64(replicas)
	b := client.B()
	res := client.DoMulti(ctx, cmd, b.Wait().Numreplicas(want).Timeout(timeout.Milliseconds()).Build())
	if err := res[0].Error(); err != nil {
		return res[0], err
	}
	got, err := res[1].AsInt64()
	if err != nil {
		return res[0], fmt.Errorf("wait for replicas: %w", err)
	}
	if got >= want {
		return res[0], nil
	}
	role, err := client.Do(ctx, b.Role().Build()).ToArray()
	if err != nil || len(role) < 3 {
		return res[0], fmt.Errorf("wait for replicas: %d of %d acknowledged; role: %v", got, want, err)
	}
	connected, err := role[2].ToArray()
	if err != nil {
		return res[0], fmt.Errorf("wait for replicas: %d of %d acknowledged; role: %w", got, want, err)
	}
	if got < min(want, int64(len(connected))) {
		return res[0], fmt.Errorf("wait for replicas: %d of the %d connected acknowledged within %s", got, min(want, int64(len(connected))), timeout)
	}
	return res[0], nil
}
