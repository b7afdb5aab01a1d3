package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
)

// Fence orders the conditional appends of each aggregate on a log that has
// no compare-and-set. It records every aggregate's last position; an append
// claims the aggregate for one attempt, produces, and settles the claim with
// the position the broker assigned. A claim is held for a lease. When the
// fence is behind the log (a publisher died holding a claim, the fence lost
// writes or all its data), the next appender reads the aggregate's records
// after the fence's position in the log and advances the fence to them.
type Fence interface {
	// Claim claims the aggregate key for one append attempt, token, until
	// now+lease, provided its last position is expected. It fails with an
	// error wrapping events.ErrConflict when the position is past expected
	// or another attempt holds an unexpired claim, and with a *[Behind]
	// when the fence may be behind the log: expected is past its position,
	// or a claim expired unsettled.
	Claim(ctx context.Context, key string, expected uint64, token string, lease time.Duration) error
	// Settle ends the claim of token on key, recording pos as the
	// aggregate's last position. It reports false when token no longer
	// holds the claim (it expired and was resolved).
	Settle(ctx context.Context, key, token string, pos uint64) (bool, error)
	// Advance moves key from position from to to (no lower), ending the
	// expired claim of token ("" when none), if the fence still holds
	// exactly that.
	Advance(ctx context.Context, key string, from, to uint64, token string) error
	// Head returns the aggregate's last settled position, 0 when none.
	Head(ctx context.Context, key string) (uint64, error)
}

// Behind says the fence of Key may be behind the log: its position is Head
// and Token is the expired claim it still holds, if any.
type Behind struct {
	Key, Token string
	Head       uint64
}

func (b *Behind) Error() string {
	if b.Token != "" {
		return fmt.Sprintf("append to %s claimed by %s was never settled", b.Key, b.Token)
	}
	return fmt.Sprintf("the fence of %s (at %d) is behind the log", b.Key, b.Head)
}

// conditional appends msgs, all of one aggregate, if its last position is
// still expected.
func (p *Publisher) conditional(ctx context.Context, expected uint64, msgs []*message.Message, recs []*kgo.Record) error {
	if p.cfg.Fence == nil {
		return fmt.Errorf("publish %s: a conditional append needs a fence", msgs[0].UUID)
	}
	typ, id := msgs[0].Metadata.Get(bus.MetaAggregateType), msgs[0].Metadata.Get(bus.MetaAggregateID)
	for _, m := range msgs[1:] {
		if m.Metadata.Get(bus.MetaAggregateType) != typ || m.Metadata.Get(bus.MetaAggregateID) != id {
			return fmt.Errorf("publish %s: a conditional append is of one aggregate", m.UUID)
		}
	}
	key, token := aggregateKey(typ, id), uuid.NewString()
	// The produce must end before the claim does: its deadline counts
	// from before the claim is made.
	deadline := time.Now().Add(p.cfg.Lease / 2)
	for attempt := 0; ; attempt++ {
		err := p.cfg.Fence.Claim(ctx, key, expected, token, p.cfg.Lease)
		var behind *Behind
		switch {
		case err == nil:
		case errors.As(err, &behind) && attempt < 3:
			if err := p.catchUp(ctx, recs[0].Partition, behind); err != nil {
				return fmt.Errorf("publish %s: %w", msgs[0].UUID, err)
			}
			continue
		case errors.Is(err, events.ErrConflict):
			return fmt.Errorf("publish %s: %w", msgs[0].UUID, err)
		default:
			return fmt.Errorf("publish %s: claim %s: %w", msgs[0].UUID, key, err)
		}
		break
	}
	if time.Now().After(deadline) {
		return fmt.Errorf("publish %s: the claim of %s took too long; retry", msgs[0].UUID, key)
	}
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if _, err := p.produce(pctx, p.fenced, msgs, recs); err != nil {
		// Perhaps stored (a cancelled produce may still land): the claim
		// expires and the next appender finds out from the log.
		return err
	}
	last := positionOf(msgs[len(msgs)-1])
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeeping)
	defer scancel()
	settled, err := p.cfg.Fence.Settle(sctx, key, token, last)
	switch {
	case err != nil:
		// Stored: the claim expires and the next appender finds the event.
		return fmt.Errorf("publish %s: stored at %d, settle %s: %w", msgs[0].UUID, last, key, err)
	case !settled:
		p.log.Error("a conditional append was stored after its claim expired: another command on the aggregate may have been decided on the state before it",
			"aggregate", key, "event", msgs[0].UUID, "position", last)
	}
	return nil
}

// catchUp advances the fence of b.Key to the aggregate's last record in
// the log after b.Head.
func (p *Publisher) catchUp(ctx context.Context, partition int32, b *Behind) error {
	if p.scan == nil {
		return fmt.Errorf("catch up %w: no scanner", b)
	}
	last, err := p.scan.LastOf(ctx, partition, b.Key, b.Head)
	if err != nil {
		return fmt.Errorf("catch up %w: %w", b, err)
	}
	return p.cfg.Fence.Advance(ctx, b.Key, b.Head, last, b.Token)
}

// Heads reads the position of an aggregate's last event from the fence. It
// implements handlers.Heads.
type Heads struct{ Fence Fence }

// Head returns the position of the aggregate's last settled event.
func (h Heads) Head(ctx context.Context, aggregateType, id string) (uint64, error) {
	return h.Fence.Head(ctx, aggregateKey(aggregateType, id))
}

// Scanner reads partitions of the event topic directly.
type Scanner struct {
	brokers []string
	topic   string
	opts    []kgo.Opt
	log     *Log
}

// NewScanner returns a scanner of topic on brokers; opts are added to its
// clients (TLS, SASL).
func NewScanner(brokers []string, topic string, log *Log, opts ...kgo.Opt) *Scanner {
	return &Scanner{brokers: brokers, topic: topic, log: log, opts: opts}
}

// LastOf returns the position of the last record of aggregate key in
// partition after position after (after itself when there is none). It
// reads up to the partition's high watermark: records not yet replicated
// to every in-sync replica are not seen.
func (s *Scanner) LastOf(ctx context.Context, partition int32, key string, after uint64) (uint64, error) {
	heads, err := s.log.Heads(ctx)
	if err != nil {
		return 0, err
	}
	start, end := offsetAfter(after), int64(heads[partition])
	if start >= end {
		return after, nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {partition: kgo.NewOffset().At(start)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
	}, s.opts...)...)
	if err != nil {
		return 0, fmt.Errorf("scan partition %d: %w", partition, err)
	}
	defer cl.Close()
	last := after
	for next := start; next < end; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("scan partition %d from %d: %w", partition, start, err)
		}
		for _, fe := range fs.Errors() {
			return 0, fmt.Errorf("scan partition %d: %w", partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if _, typ, id := recordMeta(r); r.Offset < end && aggregateKey(typ, id) == key {
				last = position(r.Offset)
			}
		})
	}
	return last, nil
}
