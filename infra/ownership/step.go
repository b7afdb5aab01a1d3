package ownership

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// step takes and releases partitions so that this replica holds exactly
// the ones the live replicas' assignment gives it. Heartbeats and renewals
// run beside it (see keep): a step may wait long on drains and acquisitions.
func (c *Coordinator) step(ctx context.Context) {
	take, give := c.plan(time.Now())
	if len(give) > 0 {
		c.revokeAll(give)
		// Drained: delete the leases even if ctx ended meanwhile (a
		// SIGTERM mid-drain), or the next owners would wait out the TTL.
		for _, p := range give {
			c.dropLease(context.WithoutCancel(ctx), p)
		}
	}
	for _, t := range take {
		c.acquire(ctx, t)
	}
}

// keep heartbeats and renews the leases held, every tick, until the
// returned stop is called, whatever the rest of the coordinator is waiting
// for: a drain can outlast a lease, and no other replica may take a
// partition whose batch in hand is still being applied, or it would apply
// that batch a second time. Each operation has its own deadline, so keep
// goes on after ctx ends, until stop.
func (c *Coordinator) keep(ctx context.Context) (stop func()) {
	ctx = context.WithoutCancel(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(c.cfg.Tick)
		defer t.Stop()
		for now := time.Now(); ; {
			c.renew(ctx, now) // first: a slow heartbeat must not eat into the leases' margin
			c.heartbeat(ctx, now)
			select {
			case <-done:
				return
			case now = <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (c *Coordinator) heartbeat(ctx context.Context, now time.Time) {
	if now.Sub(c.beat) < c.cfg.TTL/3 {
		return
	}
	octx, cancel := c.opContext(ctx)
	defer cancel()
	if _, err := c.kv.PutString(octx, "member."+c.cfg.Replica, now.UTC().Format(time.RFC3339Nano)); err != nil {
		c.log.Warn("heartbeat failed", "err", err)
		return
	}
	c.beat = now
}

// renew extends every lease held, all at once. A lease is lost when
// another replica holds it (its revision moved on), or when it has not
// been renewed for 2/3 of TTL (the bucket is unreachable): others may
// take it once TTL has passed, so its partition is revoked before then.
// Until then a failed renewal is retried at the next tick.
func (c *Coordinator) renew(ctx context.Context, now time.Time) {
	c.mu.Lock()
	if now.Sub(c.renewed) < c.cfg.TTL/3 && !c.retry {
		c.mu.Unlock()
		return
	}
	c.renewed, c.retry = now, false
	type lease struct {
		rev uint64
		at  time.Time
	}
	held := make(map[int]lease, len(c.owned))
	for p, rev := range c.owned {
		held[p] = lease{rev, c.renewedAt[p]}
	}
	c.mu.Unlock()
	type result struct {
		p    int
		sent uint64 // the revision renewed
		rev  uint64
		err  error
	}
	margin := 2 * c.cfg.TTL / 3
	results := make(chan result, len(held))
	for p, l := range held {
		go func() {
			// A renewal still unanswered when the margin is up is lost.
			octx, cancel := context.WithDeadline(ctx, l.at.Add(margin))
			defer cancel()
			next, err := c.kv.Update(octx, leaseKey(p), []byte(c.cfg.Replica), l.rev)
			results <- result{p, l.rev, next, err}
		}()
	}
	for range held {
		r := <-results
		c.mu.Lock()
		// A drained partition's lease may be deleted meanwhile, or taken
		// again under a new revision: this result is then stale.
		still := c.owned[r.p] == r.sent
		if still && r.err == nil {
			c.owned[r.p], c.renewedAt[r.p] = r.rev, now
		}
		age := time.Since(c.renewedAt[r.p])
		c.mu.Unlock()
		if !still || r.err == nil || ctx.Err() != nil {
			continue
		}
		if !errors.Is(r.err, jetstream.ErrKeyExists) && age < margin {
			c.log.Warn("lease not renewed, retrying", "partition", r.p, "err", r.err)
			c.mu.Lock()
			c.retry = true
			c.mu.Unlock()
			continue
		}
		c.log.Warn("lease lost, revoking partition", "partition", r.p, "err", r.err)
		c.mu.Lock()
		delete(c.owned, r.p)
		delete(c.renewedAt, r.p)
		c.revoking[r.p] = true
		c.mu.Unlock()
		// Drained aside: renewals and heartbeats must go on meanwhile,
		// and plan does not take p again until the drain is done.
		c.revokes.Go(func() {
			c.assign.Revoke(r.p)
			c.mu.Lock()
			delete(c.revoking, r.p)
			c.mu.Unlock()
			c.poke()
		})
	}
}

// opContext bounds one bucket operation to a third of TTL, so an
// unreachable bucket cannot hold a step up past the leases' deadlines.
func (c *Coordinator) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.TTL/3)
}

// claim is a partition to take, with the lease seen when deciding to (the
// zero entry: none). Taking it is a compare-and-set on exactly that
// revision, so a lease someone took since then is not stolen.
type claim struct {
	p     int
	lease entry
}

// plan returns the partitions this replica should take now and those it
// should give up, from the assignment the live replicas' view gives.
func (c *Coordinator) plan(now time.Time) (take []claim, give []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := []string{c.cfg.Replica}
	for id, e := range c.members {
		if id != c.cfg.Replica && now.Sub(e.seen) < c.cfg.TTL {
			live = append(live, id)
		}
	}
	holders := make([]string, c.cfg.Partitions)
	for p := range holders {
		if _, mine := c.owned[p]; mine {
			holders[p] = c.cfg.Replica
		} else if l, ok := c.leases[p]; ok && now.Sub(l.seen) < c.cfg.TTL {
			holders[p] = l.value
		}
	}
	for p, owner := range assign(live, holders) {
		_, held := c.owned[p]
		switch {
		case owner == c.cfg.Replica && !held && !c.revoking[p]:
			l, leased := c.leases[p]
			if !leased || l.value == c.cfg.Replica || now.Sub(l.seen) >= c.cfg.TTL || !slices.Contains(live, l.value) {
				take = append(take, claim{p: p, lease: l})
			}
		case owner != c.cfg.Replica && held:
			give = append(give, p)
		}
	}
	return take, give
}

// assign spreads partitions over live replicas, each getting n/len(live) or
// one more, moving as few as it can: a replica keeps the partitions it holds
// (lowest first) up to its quota, and the rest go to replicas under quota.
// The extra partitions of an uneven split go to the replicas holding most,
// so a balanced cluster stays as it is. holders[p] is p's current holder
// ("" for none); every replica computes the same answer from the same view.
func assign(live []string, holders []string) []string {
	held := map[string]int{}
	for _, h := range holders {
		held[h]++
	}
	order := slices.Clone(live)
	slices.SortFunc(order, func(a, b string) int {
		if held[a] != held[b] {
			return held[b] - held[a]
		}
		return strings.Compare(a, b)
	})
	quota := map[string]int{}
	for i, id := range order {
		quota[id] = len(holders) / len(order)
		if i < len(holders)%len(order) {
			quota[id]++
		}
	}
	out := make([]string, len(holders))
	count := map[string]int{}
	for p, h := range holders {
		if _, isLive := quota[h]; isLive && count[h] < quota[h] {
			out[p] = h
			count[h]++
		}
	}
	slices.Sort(order)
	for p := range out {
		if out[p] != "" {
			continue
		}
		for _, id := range order {
			if count[id] < quota[id] {
				out[p] = id
				count[id]++
				break
			}
		}
	}
	return out
}

// acquire takes a partition's lease by compare-and-set on the revision seen
// when planning (or creates it when none was seen), then consumes it.
func (c *Coordinator) acquire(ctx context.Context, t claim) {
	var (
		rev uint64
		err error
	)
	sent := time.Now()
	octx, cancel := c.opContext(ctx)
	defer cancel()
	if t.lease.rev > 0 {
		rev, err = c.kv.Update(octx, leaseKey(t.p), []byte(c.cfg.Replica), t.lease.rev)
	} else {
		rev, err = c.kv.Create(octx, leaseKey(t.p), []byte(c.cfg.Replica))
	}
	if err != nil {
		c.log.Debug("partition not taken", "partition", t.p, "err", err)
		return
	}
	c.mu.Lock()
	c.owned[t.p], c.renewedAt[t.p] = rev, sent
	c.leases[t.p] = entry{value: c.cfg.Replica, rev: rev, seen: time.Now()}
	c.mu.Unlock()
	prev := t.lease.value
	if prev != "" && prev != c.cfg.Replica {
		c.takeovers.Add(1)
	}
	c.log.Info("took partition", "partition", t.p, "from", prev)
	c.assign.Assign(t.p)
}

// revokeAll drains partitions in parallel: a drain waits for the batch in
// hand, and one slow partition should not hold up the others' hand-over.
func (c *Coordinator) revokeAll(ps []int) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.assign.Revoke(p)
		}()
	}
	wg.Wait()
}

// dropLease forgets partition p and deletes its lease, if still ours.
func (c *Coordinator) dropLease(ctx context.Context, p int) {
	c.mu.Lock()
	rev, ours := c.owned[p]
	delete(c.owned, p)
	delete(c.renewedAt, p)
	c.mu.Unlock()
	if !ours {
		return // lost meanwhile (see renew): the lease is another's now
	}
	octx, cancel := c.opContext(ctx)
	defer cancel()
	for {
		err := c.kv.Delete(octx, leaseKey(p), jetstream.LastRevision(rev))
		if err == nil {
			return
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			c.log.Warn("lease not released; it will expire", "partition", p, "err", err)
			return
		}
		// The revision moved on: a renewal sent before p was forgotten
		// landed, or the next owner already took the lease.
		e, err := c.kv.Get(octx, leaseKey(p))
		if err != nil || string(e.Value()) != c.cfg.Replica {
			return
		}
		rev = e.Revision()
	}
}

// Release hands every partition over: it drains each one (still holding
// them meanwhile, see keep), leaves the live set (the others then plan
// without it), and deletes its leases, which the new owners see at once.
// Call it after Run returned.
func (c *Coordinator) Release(ctx context.Context) {
	owned := c.Owned()
	stop := c.keep(ctx)
	c.revokeAll(owned)
	c.revokes.Wait() // lost leases still draining
	stop()
	if err := c.kv.Delete(ctx, "member."+c.cfg.Replica); err != nil {
		c.log.Warn("could not leave the live set", "err", err)
	}
	for _, p := range owned {
		c.dropLease(ctx, p)
	}
	c.log.Info("released partitions", "partitions", owned)
}
