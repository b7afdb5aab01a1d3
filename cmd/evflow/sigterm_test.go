package main

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// Fault tests 3 and 4: a replica started late gets its share within the
// takeover bound, and one stopped with SIGTERM at once, while partitions
// may still be moving, drains and hands over: every event is applied once
// across replicas, and the survivors own its partitions within 1s of its
// release.
func TestLateReplicaGetsAShareAndSIGTERMHandsOverWithoutRedelivery(t *testing.T) {
	lateJoinAndSIGTERM(t, newCluster(t), "released partitions", 5*time.Second, time.Second)
}

// The same on Kafka: partitions move by cooperative rebalances of the
// consumer group (two rounds for a join), which start at a member's next
// heartbeat.
func TestLateReplicaAndSIGTERMOnKafka(t *testing.T) {
	lateJoinAndSIGTERM(t, newKafkaCluster(t), "partitions revoked", 8*time.Second, 3*time.Second)
}

// lateJoinAndSIGTERM runs the scenario on c: released is what the leaver
// logs once it drained and let go of its partitions; the late replica must
// have its share within joinBound, and the survivors own the leaver's
// partitions within bound of its release.
func lateJoinAndSIGTERM(t *testing.T, c *cluster, released string, joinBound, bound time.Duration) {
	small := []string{"--max-batch", "200"} // a drain waits for one batch: keep it short on FerretDB
	c.start("r1", small...)
	c.start("r2", small...)
	c.owners(10 * time.Second)
	w := newWorkload(100, 20000, 250, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var joined, handover time.Duration
	var leaver *proc
	var ownedAt, signaled time.Time
	c.run(ctx, w, func() {
		c.start("r3", small...)
		joined = c.owners(10 * time.Second)
		// SIGTERM at once, while partitions may still be moving to the
		// late replica: a replica drains them, holding their leases,
		// before anyone else applies them.
		leaver = c.live()[0]
		signaled = time.Now()
		c.kill(leaver, syscall.SIGTERM)
		handover = c.owners(10 * time.Second)
		ownedAt = time.Now()
	})
	if leaver == nil {
		t.Fatal("the workload's midway step (join, then SIGTERM) did not complete")
	}
	select {
	case err := <-leaver.done:
		if err != nil {
			t.Fatalf("%s exited with %v after SIGTERM\n%s", leaver.id, err, leaver.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still running 30s after SIGTERM", leaver.id)
	}
	releasedAt, ok := lastLoggedAfter(t, []*proc{leaver}, released, signaled)
	if !ok {
		t.Fatalf("%s did not log %q after SIGTERM", leaver.id, released)
	}
	afterRelease := ownedAt.Sub(releasedAt)
	st := c.caughtUp(5 * time.Minute)
	t.Logf("late replica had its share %s after it was ready; SIGTERM: survivors owned every partition %s after the signal, %s after the leaver released (drain before that)",
		joined, handover, afterRelease)
	if joined > joinBound {
		t.Errorf("late replica got its share after %s, want within %s", joined, joinBound)
	}
	if afterRelease > bound {
		t.Errorf("takeover after SIGTERM took %s after release, want at most %s", afterRelease, bound)
	}
	// Drained hand-overs apply every event exactly once across replicas.
	total := appliedAtExit(t, leaver)
	for _, p := range c.live() {
		s, err := c.status(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range s.Projections {
			total[pr.Name] += pr.Applied
		}
	}
	for name, n := range total {
		if n != st.StreamMessages {
			t.Errorf("projection %s applied %d events across replicas, want each of the %d once (none redelivered)", name, n, st.StreamMessages)
		}
	}
	if len(total) != 3 {
		t.Errorf("applied counts of %v, want all three projections", total)
	}
	c.verify(w)
}
