package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
)

// Fence orders the conditional appends of each aggregate on a log that has
// no compare-and-set. It records every aggregate's last position; an append
// claims the aggregate, produces, and settles the claim with the position
// the broker assigned. A claim is held for a lease: a publisher that dies
// holding one leaves it "in doubt" once the lease ends, and the next
// appender finds out from the log whether the event was stored.
type Fence interface {
	// Claim claims the aggregate key for appending event id until
	// now+lease, provided the aggregate's last position is expected. It
	// fails with an error wrapping events.ErrConflict when the position
	// moved or another append holds an unexpired claim, and with a *[Doubt]
	// when a claim expired unsettled. Claiming again for the same id
	// renews the claim.
	Claim(ctx context.Context, key string, expected uint64, id string, lease time.Duration) error
	// Settle ends the claim of id on key, recording pos as the aggregate's
	// last position; pos 0 leaves the position as it is (nothing stored).
	// It does nothing when id no longer holds the claim.
	Settle(ctx context.Context, key, id string, pos uint64) error
	// Head returns the aggregate's last settled position, 0 when none.
	Head(ctx context.Context, key string) (uint64, error)
}

// Doubt is an expired claim whose outcome is unknown: its holder may or may
// not have stored its event after Head.
type Doubt struct {
	Key, ID string
	// Head is the last settled position; Since is when the claim was made.
	Head  uint64
	Since time.Time
}

func (d *Doubt) Error() string {
	return fmt.Sprintf("append of %s to %s claimed at %s was never settled", d.ID, d.Key, d.Since.Format(time.RFC3339Nano))
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
	key, claim := aggregateKey(typ, id), msgs[0].UUID
	for attempt := 0; ; attempt++ {
		err := p.cfg.Fence.Claim(ctx, key, expected, claim, p.cfg.Lease)
		var doubt *Doubt
		switch {
		case err == nil:
		case errors.As(err, &doubt) && attempt < 3:
			if err := p.resolve(ctx, recs[0].Partition, doubt); err != nil {
				return fmt.Errorf("publish %s: %w", claim, err)
			}
			continue
		case errors.Is(err, events.ErrConflict):
			return fmt.Errorf("publish %s: %w", claim, err)
		default:
			return fmt.Errorf("publish %s: claim %s: %w", claim, key, err)
		}
		break
	}
	// The produce gives up within half the lease (RecordDeliveryTimeout),
	// so once the claim expires nothing of it can still be stored.
	pctx, cancel := context.WithTimeout(ctx, p.cfg.Lease/2)
	defer cancel()
	if err := p.produce(pctx, msgs, recs); err != nil {
		// Partly stored, perhaps: leave the claim to expire and be resolved.
		return err
	}
	last, _ := bus.Position(msgs[len(msgs)-1])
	if err := p.cfg.Fence.Settle(context.WithoutCancel(ctx), key, claim, last); err != nil {
		// Stored: the claim expires and the next appender finds the event.
		return fmt.Errorf("publish %s: stored at %d, settle %s: %w", claim, last, key, err)
	}
	return nil
}

// resolve settles an expired claim: the aggregate's last position is that
// of its last record stored since the claim was made, if any.
func (p *Publisher) resolve(ctx context.Context, partition int32, d *Doubt) error {
	if p.scan == nil {
		return fmt.Errorf("resolve %w: no scanner", d)
	}
	pos, err := p.scan.LastOf(ctx, partition, d.Key, d.Since.Add(-time.Second))
	if err != nil {
		return fmt.Errorf("resolve %w: %w", d, err)
	}
	return p.cfg.Fence.Settle(ctx, d.Key, d.ID, max(pos, d.Head))
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

// LastOf returns the position of the last record of aggregate key stored in
// partition at or after since, 0 when there is none.
func (s *Scanner) LastOf(ctx context.Context, partition int32, key string, since time.Time) (uint64, error) {
	if since.UnixMilli() < 0 {
		since = time.UnixMilli(0) // from the first record
	}
	from, err := s.log.offsetsAt(ctx, since)
	if err != nil {
		return 0, err
	}
	heads, err := s.log.Heads(ctx)
	if err != nil {
		return 0, err
	}
	start, end := from[partition], int64(heads[partition])
	if start >= end {
		return 0, nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {partition: kgo.NewOffset().At(start)}}),
	}, s.opts...)...)
	if err != nil {
		return 0, fmt.Errorf("scan partition %d: %w", partition, err)
	}
	defer cl.Close()
	var last uint64
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
