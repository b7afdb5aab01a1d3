package ownership

import (
	"context"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// step heartbeats, renews, then takes and releases partitions so that this
// replica holds exactly the ones the live replicas' assignment gives it.
func (c *Coordinator) step(ctx context.Context) {
	now := time.Now()
	c.heartbeat(ctx, now)
	c.renew(ctx, now)
	take, give := c.plan(now)
	for _, p := range give {
		c.release(ctx, p)
	}
	for _, t := range take {
		c.acquire(ctx, t)
	}
}

func (c *Coordinator) heartbeat(ctx context.Context, now time.Time) {
	if now.Sub(c.beat) < c.cfg.TTL/3 {
		return
	}
	if _, err := c.kv.PutString(ctx, "member."+c.cfg.Replica, now.UTC().Format(time.RFC3339Nano)); err != nil {
		c.log.Warn("heartbeat failed", "err", err)
		return
	}
	c.beat = now
}

// renew extends every lease held; a lease that cannot be renewed is lost
// and its partition revoked at once.
func (c *Coordinator) renew(ctx context.Context, now time.Time) {
	c.mu.Lock()
	if now.Sub(c.renewed) < c.cfg.TTL/3 {
		c.mu.Unlock()
		return
	}
	held := make(map[int]uint64, len(c.owned))
	for p, rev := range c.owned {
		held[p] = rev
	}
	c.mu.Unlock()
	for p, rev := range held {
		next, err := c.kv.Update(ctx, leaseKey(p), []byte(c.cfg.Replica), rev)
		if err == nil {
			c.mu.Lock()
			c.owned[p] = next
			c.mu.Unlock()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("lease lost, revoking partition", "partition", p, "err", err)
		c.mu.Lock()
		delete(c.owned, p)
		c.mu.Unlock()
		c.assign.Revoke(p)
	}
	c.mu.Lock()
	c.renewed = now
	c.mu.Unlock()
}

// claim is a partition to take, with the lease seen when deciding to (the
// zero entry: none). Taking it is a compare-and-set on exactly that
// revision, so a lease someone took since then is not stolen.
type claim struct {
	p     int
	lease entry
}

// plan returns the partitions this replica should take now and those it
// should give up.
func (c *Coordinator) plan(now time.Time) (take []claim, give []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := []string{c.cfg.Replica}
	for id, e := range c.members {
		if id != c.cfg.Replica && now.Sub(e.seen) < c.cfg.TTL {
			live = append(live, id)
		}
	}
	slices.Sort(live)
	for p := 0; p < c.cfg.Partitions; p++ {
		mine := live[p%len(live)] == c.cfg.Replica
		_, held := c.owned[p]
		switch {
		case mine && !held:
			l, leased := c.leases[p]
			if !leased || l.value == c.cfg.Replica || now.Sub(l.seen) >= c.cfg.TTL || !slices.Contains(live, l.value) {
				take = append(take, claim{p: p, lease: l})
			}
		case !mine && held:
			give = append(give, p)
		}
	}
	return take, give
}

// acquire takes a partition's lease by compare-and-set on the revision seen
// when planning (or creates it when none was seen), then consumes it.
func (c *Coordinator) acquire(ctx context.Context, t claim) {
	var (
		rev uint64
		err error
	)
	if t.lease.rev > 0 {
		rev, err = c.kv.Update(ctx, leaseKey(t.p), []byte(c.cfg.Replica), t.lease.rev)
	} else {
		rev, err = c.kv.Create(ctx, leaseKey(t.p), []byte(c.cfg.Replica))
	}
	if err != nil {
		c.log.Debug("partition not taken", "partition", t.p, "err", err)
		return
	}
	c.mu.Lock()
	c.owned[t.p] = rev
	c.leases[t.p] = entry{value: c.cfg.Replica, rev: rev, seen: time.Now()}
	c.mu.Unlock()
	if prev := t.lease.value; prev != "" && prev != c.cfg.Replica {
		c.takeovers.Add(1)
		c.log.Info("took over partition", "partition", t.p, "from", prev)
	} else {
		c.log.Debug("took partition", "partition", t.p)
	}
	c.assign.Assign(t.p)
}

// release drains partition p and deletes its lease so its next owner takes
// it at once.
func (c *Coordinator) release(ctx context.Context, p int) {
	c.assign.Revoke(p)
	c.dropLease(ctx, p)
}

// dropLease forgets partition p and deletes its lease, if still ours.
func (c *Coordinator) dropLease(ctx context.Context, p int) {
	c.mu.Lock()
	rev := c.owned[p]
	delete(c.owned, p)
	c.mu.Unlock()
	if err := c.kv.Delete(ctx, leaseKey(p), jetstream.LastRevision(rev)); err != nil {
		c.log.Warn("lease not released; it will expire", "partition", p, "err", err)
	}
}

// Release hands every partition over: it drains each one, leaves the live
// set (the others then plan without it), and deletes its leases, which the
// new owners see at once. Call it after Run returned.
func (c *Coordinator) Release(ctx context.Context) {
	owned := c.Owned()
	for _, p := range owned {
		c.assign.Revoke(p)
	}
	if err := c.kv.Delete(ctx, "member."+c.cfg.Replica); err != nil {
		c.log.Warn("could not leave the live set", "err", err)
	}
	for _, p := range owned {
		c.dropLease(ctx, p)
	}
	c.log.Info("released partitions", "partitions", owned)
}
