package redis

import (
	"context"
	"testing"
	"time"

	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

// Redis with Sentinel, the high-availability mode evflow supports: the
// primary is killed; Sentinel promotes the replica, the client follows it,
// what was replicated is there (data and checkpoints together), and
// writes go on, idempotent as ever.
func TestSentinelFailoverKeepsTheProjectionAndWritesGoOn(t *testing.T) {
	rs := testenv.StartRedisSentinel(t)
	ctx, cancel := context.WithTimeout(testenv.Context(t), 90*time.Second)
	defer cancel()
	c, err := Connect(ctx, ClientConfig{Sentinels: []string{rs.Sentinel}, MasterSet: rs.MasterSet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := New(c, Config{})
	if err != nil {
		t.Fatal(err)
	}
	const day = "2026-11-23"
	if err := s.ApplyHot(ctx, []projections.ReleaseChange{{AppID: "a", Version: "1.0.0", Position: 1}},
		[]projections.LaunchGroup{group("a", day, 2, devices(10)...)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, projections.RedisName, 0, 11); err != nil {
		t.Fatal(err)
	}
	// The writes reached the replica before the primary dies.
	if n, err := c.Do(ctx, c.B().Wait().Numreplicas(1).Timeout(5000).Build()).AsInt64(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica: %d, %v", n, err)
	}

	rs.Primary.Stop()
	began := time.Now()
	// Writes resume on the promoted replica: a redelivered batch changes
	// nothing, a new one applies.
	testenv.WaitEvery(t, 60*time.Second, 100*time.Millisecond, func() error {
		return s.ApplyHot(ctx, nil, []projections.LaunchGroup{group("a", day, 2, devices(10)...), group("a", day, 12, "dev-new")})
	})
	t.Logf("writes resumed %s after the primary was killed (Sentinel down-after 1s)", time.Since(began).Round(time.Millisecond))
	role, err := c.Do(ctx, c.B().Role().Build()).ToArray()
	if err != nil || len(role) == 0 {
		t.Fatalf("ROLE: %v", err)
	}
	if r, _ := role[0].ToString(); r != "master" {
		t.Fatalf("the client writes to a %s", r)
	}
	version, pos, found, err := s.Release(ctx, "a")
	if err != nil || !found || version != "1.0.0" || pos != 1 {
		t.Fatalf("Release(a) = %q %d %v %v; want 1.0.0 at 1", version, pos, found, err)
	}
	n, uniq, err := s.Launches(ctx, "a", day)
	if err != nil || n != 11 || uniq != 11 {
		t.Fatalf("Launches(a) = %d, %d devices, %v; want 11 and 11", n, uniq, err)
	}
	if cp, err := s.Checkpoint(ctx, projections.RedisName, 0); err != nil || cp != 11 {
		t.Fatalf("checkpoint = %d, %v; want 11", cp, err)
	}
}

// With WaitReplicas, a checkpoint is saved only once the replica has it:
// not while the replica is frozen (its batch is then retried), and again
// once it is back; with no replica connected at all, without waiting.
func TestWaitReplicasHoldsCheckpointsUntilAReplicaHasThem(t *testing.T) {
	rs := testenv.StartRedisSentinel(t)
	ctx, cancel := context.WithTimeout(testenv.Context(t), 60*time.Second)
	defer cancel()
	c, err := Connect(ctx, ClientConfig{Addr: rs.Primary.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := New(c, Config{WaitReplicas: 1, WaitTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, func() error { return s.SaveCheckpoint(ctx, "redis", 0, 1) })
	rs.Replica.Pause()
	if err := s.SaveCheckpoint(ctx, "redis", 0, 2); err == nil {
		t.Fatal("checkpoint saved while the only replica is frozen")
	}
	rs.Replica.Resume()
	if err := s.SaveCheckpoint(ctx, "redis", 0, 3); err != nil {
		t.Fatalf("checkpoint once the replica is back: %v", err)
	}
	rs.Replica.Stop()
	testenv.WaitFor(t, 10*time.Second, func() error { return s.SaveCheckpoint(ctx, "redis", 0, 4) })
}
