package platform_test

import (
	"testing"
	"time"

	"github.com/evflow/evflow/infra/testenv"
)

// Redis with Sentinel: while the replica is cut off from the primary
// (neither notices), launches keep being acknowledged on the stream, but
// the Redis projection's batches wait for the replica to have them. The
// primary is then killed and the replica promoted: the projection resumes
// on it and ends exact, although the dead primary had applied batches the
// replica never got.
func TestRedisSentinelFailoverLosesNoProjectedLaunch(t *testing.T) {
	s := newStand(t)
	rs := testenv.StartRedisSentinel(t)
	s.cfg.RedisAddr, s.cfg.RedisSentinels, s.cfg.RedisMasterSet = "", rs.Sentinel, rs.MasterSet
	r := s.start(t)
	w := newDrillWorkload(5)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 200)
	w.settled(t, r)

	rs.Link.Blackhole(true) // partitioned: the replica gets nothing more, and nobody notices
	w.launch(t, r, 300)
	time.Sleep(500 * time.Millisecond) // batches applied to the primary alone
	rs.Primary.Stop()
	killed := time.Now()
	testenv.WaitEvery(t, 60*time.Second, 200*time.Millisecond, func() error { return w.check(r) })
	t.Logf("projection exact %s after the primary was killed", time.Since(killed).Round(time.Millisecond))
	r.caughtUp()
}
