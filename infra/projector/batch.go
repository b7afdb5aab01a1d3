package projector

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/projections"
)

// DeadLetterBox parks what a projection cannot apply.
type DeadLetterBox interface {
	// Park stores a letter; parking one projection and position twice
	// keeps one letter.
	Park(ctx context.Context, l bus.Letter) error
	// Parked reports whether projection has letters of the aggregate on partition.
	Parked(ctx context.Context, projection string, partition int, aggType, aggID string) (bool, error)
	// Blocked returns the aggregates (bus.AggregateKey) that projection
	// has letters of on partition.
	Blocked(ctx context.Context, projection string, partition int) (map[string]bool, error)
}

// batch is what one round of a partition's worker applies.
type batch struct {
	p       int
	events  []projections.Event
	msgs    []*message.Message // delivered message of each event
	markers int                // events parked, with a nil Payload
	blocked map[string]bool    // aggregates with parked events (nil: no dead letters)
	drain   <-chan struct{}
	info    Batch // what the observer is told
}

// loadBlocked reads which aggregates have parked events on partition p,
// retrying until it can; nil when ctx ends or p is drained first.
func (r *Runner) loadBlocked(ctx context.Context, p int, drain <-chan struct{}) map[string]bool {
	backoff := r.cfg.MinBackoff
	for {
		blocked, err := r.cfg.DeadLetters.Blocked(ctx, r.name, p)
		if err == nil && blocked == nil {
			blocked = map[string]bool{}
		}
		if err == nil {
			return blocked
		}
		r.log.Warn("dead letters unavailable, retrying", "partition", p, "err", err)
		if !r.pause(ctx, drain, &backoff) {
			return nil
		}
	}
}

// decode turns messages into events. It keeps only positions above *last,
// and raises it: a batch is strictly increasing, because a projection
// ignores an event older than one it applied, and a redelivered message is
// a no-op anyway. An undecodable event, or one of an aggregate with parked
// events, is parked and becomes a marker. It returns false when ctx ends
// or the partition is drained before a letter could be parked.
func (r *Runner) decode(ctx context.Context, b *batch, msgs []*message.Message, last *uint64) bool {
	b.events = make([]projections.Event, 0, len(msgs))
	checked := map[string]bool{} // aggregates whose letters were looked up in this batch
	for _, m := range msgs {
		pos, err := bus.Position(m)
		if err == nil && pos <= *last {
			continue
		}
		*last = max(*last, pos)
		rec, err := bus.FromMessage(m)
		var payload any
		if err == nil {
			payload, err = r.cfg.Registry.DecodeValid(rec.Envelope) // rec came from events.Unmarshal
		}
		if err != nil && b.blocked == nil {
			r.skipped.Add(1)
			r.log.ErrorContext(ctx, "skipping undecodable event", "partition", b.p, "position", pos, "event_id", m.UUID, "err", err)
			continue
		}
		rec.Partition, rec.Position = b.p, pos
		ev := projections.Event{Record: rec, Payload: payload}
		b.events, b.msgs = append(b.events, ev), append(b.msgs, m)
		i := len(b.events) - 1
		if err != nil {
			if !r.park(ctx, b, i, "undecodable: "+err.Error(), 1) {
				return false
			}
			continue
		}
		if len(b.blocked) == 0 {
			continue
		}
		agg := bus.AggregateKey(m.Metadata.Get(bus.MetaAggregateType), m.Metadata.Get(bus.MetaAggregateID))
		if b.blocked[agg] && !checked[agg] {
			checked[agg] = true
			if !r.stillParked(ctx, b, m) {
				delete(b.blocked, agg)
			}
		}
		if b.blocked[agg] {
			if !r.park(ctx, b, i, "held behind an earlier parked event of "+agg, 0) {
				return false
			}
		}
	}
	b.info.Events = len(b.events)
	return true
}

// stillParked asks the dead letters whether m's aggregate still has
// letters (a redrive may have cleared them), retrying until it knows; on
// ctx's end or a drain it answers true, the safe side.
func (r *Runner) stillParked(ctx context.Context, b *batch, m *message.Message) bool {
	backoff := r.cfg.MinBackoff
	for {
		parked, err := r.cfg.DeadLetters.Parked(ctx, r.name, b.p, m.Metadata.Get(bus.MetaAggregateType), m.Metadata.Get(bus.MetaAggregateID))
		if err == nil {
			return parked
		}
		r.log.Warn("dead letters unavailable, retrying", "partition", b.p, "err", err)
		if !r.pause(ctx, b.drain, &backoff) {
			return true
		}
	}
}

// park parks event i of b with reason, blocks its aggregate, and makes it
// a marker. It retries until the letter is stored: it returns false only
// when ctx ends or the partition is drained first.
func (r *Runner) park(ctx context.Context, b *batch, i int, reason string, attempts int) bool {
	m := b.msgs[i]
	l := bus.LetterOf(r.name, m, reason, attempts)
	backoff := r.cfg.MinBackoff
	for {
		err := r.cfg.DeadLetters.Park(ctx, l)
		if err == nil {
			break
		}
		r.log.WarnContext(ctx, "cannot park a dead letter, retrying", "partition", b.p, "position", l.Position, "err", err)
		if !r.pause(ctx, b.drain, &backoff) {
			return false
		}
	}
	if l.AggregateType != "" {
		b.blocked[l.Aggregate()] = true
	}
	b.events[i].Payload = nil
	b.markers++
	b.info.Parked = b.markers
	r.parked.Add(1)
	r.cfg.Observer.Parked(ctx, &b.info, l)
	r.log.ErrorContext(ctx, "event parked as a dead letter", "partition", b.p, "position", l.Position, "event_id", l.MessageID,
		"correlation_id", b.events[i].CorrelationID, "aggregate", l.Aggregate(), "reason", reason)
	return true
}

// applyBatch applies b, retrying until it succeeds. When it fails with a
// permanent error and dead letters are configured, it applies the events
// one at a time to find and park the ones that fail, then applies the
// batch again for its checkpoint (what was applied is a no-op). It returns
// false when ctx ends, or when the partition is being drained and an
// attempt failed: a batch its store cannot take is left, unacknowledged,
// to the partition's next owner rather than holding up the hand-over.
func (r *Runner) applyBatch(ctx context.Context, b *batch) bool {
	limit := 0 // never give up
	if b.blocked != nil {
		limit = 1
	}
	ok, err := r.apply(ctx, b, b.events, limit)
	if ok || err == nil {
		return ok
	}
	r.log.WarnContext(ctx, "batch failed for good, applying its events one at a time", "partition", b.p, "events", len(b.events), "err", err)
	for i, e := range b.events {
		if e.Payload == nil {
			continue
		}
		agg := bus.AggregateKey(e.AggregateType, e.AggregateID)
		if b.blocked[agg] {
			if !r.park(ctx, b, i, "held behind an earlier parked event of "+agg, 0) {
				return false
			}
			continue
		}
		ok, err := r.apply(ctx, b, b.events[i:i+1], r.cfg.MaxAttempts)
		if ok {
			continue
		}
		if err == nil || !r.park(ctx, b, i, err.Error(), r.cfg.MaxAttempts) {
			return false
		}
	}
	ok, _ = r.apply(ctx, b, b.events, 0)
	return ok
}

// pause waits *backoff, then doubles it up to MaxBackoff; false when ctx
// ends or drain closes first.
func (r *Runner) pause(ctx context.Context, drain <-chan struct{}, backoff *time.Duration) bool {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	*backoff = min(2**backoff, r.cfg.MaxBackoff)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-drain:
		return false
	}
}
