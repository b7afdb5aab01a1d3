package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/evflow/evflow/infra/bus/kafka"
)

// Dedup is the Redis [kafka.Dedup]: a key per published event id, holding
// its position, that expires after the deduplication window. Losing Redis
// loses the window, not events: a publish retried across that loss is
// stored twice, as one retried after the window would be.
type Dedup struct {
	client rueidis.Client
	prefix string
}

var _ kafka.Dedup = (*Dedup)(nil)

// NewDedup returns the deduplication window kept in client under prefix
// (default "evflow:published:").
func NewDedup(client rueidis.Client, prefix string) *Dedup {
	if prefix == "" {
		prefix = "evflow:published:"
	}
	return &Dedup{client: client, prefix: prefix}
}

// Lookup implements kafka.Dedup with one MGET.
func (d *Dedup) Lookup(ctx context.Context, ids []string) ([]uint64, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = d.prefix + id
	}
	vals, err := d.client.Do(ctx, d.client.B().Mget().Key(keys...).Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("look up %d published ids: %w", len(ids), err)
	}
	out := make([]uint64, len(ids))
	for i, v := range vals {
		s, err := v.ToString()
		if rueidis.IsRedisNil(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("published id %s: %w", ids[i], err)
		}
		if out[i], err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, fmt.Errorf("published id %s: stored %q: %w", ids[i], s, err)
		}
	}
	return out, nil
}

// Remember implements kafka.Dedup, pipelined.
func (d *Dedup) Remember(ctx context.Context, ids []string, positions []uint64, window time.Duration) error {
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = d.client.B().Set().Key(d.prefix + id).Value(strconv.FormatUint(positions[i], 10)).Px(window).Build()
	}
	for i, res := range d.client.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("remember published id %s: %w", ids[i], err)
		}
	}
	return nil
}
