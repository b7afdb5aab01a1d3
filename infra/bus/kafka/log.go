package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Log reads the event topic's partitions: their heads, the events after a
// position, and where a time falls. It implements bus.Log.
type Log struct {
	adm        *kadm.Client
	topic      string
	partitions int
}

// NewLog returns the log of topic, split in partitions.
func NewLog(adm *kadm.Client, topic string, partitions int) *Log {
	return &Log{adm: adm, topic: topic, partitions: partitions}
}

// Heads returns the position of the last record of every partition (0 for
// an empty one).
func (l *Log) Heads(ctx context.Context) ([]uint64, error) {
	ends, err := l.list(ctx, "end offsets", func(ctx context.Context) (kadm.ListedOffsets, error) {
		return l.adm.ListEndOffsets(ctx, l.topic)
	})
	if err != nil {
		return nil, err
	}
	heads := make([]uint64, l.partitions)
	for p, off := range ends {
		heads[p] = uint64(off) // the end offset is the last offset + 1: its position
	}
	return heads, nil
}

// Pending counts the events of partition p after position after.
func (l *Log) Pending(ctx context.Context, p int, after uint64) (uint64, error) {
	heads, err := l.Heads(ctx)
	if err != nil {
		return 0, err
	}
	return heads[p] - min(after, heads[p]), nil
}

// Messages counts the records the topic holds.
func (l *Log) Messages(ctx context.Context) (uint64, error) {
	starts, err := l.list(ctx, "start offsets", func(ctx context.Context) (kadm.ListedOffsets, error) {
		return l.adm.ListStartOffsets(ctx, l.topic)
	})
	if err != nil {
		return 0, err
	}
	heads, err := l.Heads(ctx)
	if err != nil {
		return 0, err
	}
	var n uint64
	for p, h := range heads {
		n += h - min(uint64(starts[p]), h)
	}
	return n, nil
}

// StartsAt returns, per partition, the position after which the events
// stored at or after t begin.
func (l *Log) StartsAt(ctx context.Context, t time.Time) ([]uint64, error) {
	offs, err := l.offsetsAt(ctx, t)
	if err != nil {
		return nil, err
	}
	out := make([]uint64, len(offs))
	for p, o := range offs {
		out[p] = uint64(o) // position o is the record before offset o
	}
	return out, nil
}

// offsetsAt returns, per partition, the offset of the first record stored
// at or after t (the end offset when none is).
func (l *Log) offsetsAt(ctx context.Context, t time.Time) ([]int64, error) {
	offs, err := l.list(ctx, "offsets at "+t.Format(time.RFC3339Nano), func(ctx context.Context) (kadm.ListedOffsets, error) {
		return l.adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), l.topic)
	})
	if err != nil {
		return nil, err
	}
	var heads []uint64
	for p, o := range offs {
		if o >= 0 {
			continue
		}
		// No record at or after t: the partition's end.
		if heads == nil {
			if heads, err = l.Heads(ctx); err != nil {
				return nil, err
			}
		}
		offs[p] = int64(heads[p])
	}
	return offs, nil
}

func (l *Log) list(ctx context.Context, what string, f func(context.Context) (kadm.ListedOffsets, error)) ([]int64, error) {
	listed, err := f(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", what, l.topic, err)
	}
	if err := listed.Error(); err != nil {
		return nil, fmt.Errorf("%s of %s: %w", what, l.topic, err)
	}
	out := make([]int64, l.partitions)
	for p := range out {
		o, ok := listed.Lookup(l.topic, int32(p))
		if !ok {
			return nil, fmt.Errorf("%s of %s: partition %d missing", what, l.topic, p)
		}
		out[p] = o.Offset
	}
	return out, nil
}
