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

// reserveLua looks up and reserves event ids. KEYS the ids' keys; ARGV
// the reservation's ttl in ms. Returns per key its value ("pending" or a
// position), or "" when this call reserved it.
var reserveLua = rueidis.NewLuaScript(`
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v then
    out[i] = v
  else
    redis.call('SET', k, 'pending', 'PX', ARGV[1])
    out[i] = ''
  end
end
return out
`)

// unreserveLua drops reservations. KEYS the ids' keys.
var unreserveLua = rueidis.NewLuaScript(`
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == 'pending' then redis.call('DEL', k) end
end
return 0
`)

// Reserve implements kafka.Dedup in one atomic script.
func (d *Dedup) Reserve(ctx context.Context, ids []string, ttl time.Duration) ([]uint64, error) {
	vals, err := reserveLua.Exec(ctx, d.client, d.keys(ids), []string{strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)}).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("reserve %d event ids: %w", len(ids), err)
	}
	out := make([]uint64, len(ids))
	for i, v := range vals {
		switch v {
		case "":
		case "pending":
			out[i] = kafka.InFlight
		default:
			if out[i], err = strconv.ParseUint(v, 10, 64); err != nil {
				return nil, fmt.Errorf("published id %s: stored %q: %w", ids[i], v, err)
			}
		}
	}
	return out, nil
}

// Release implements kafka.Dedup.
func (d *Dedup) Release(ctx context.Context, ids []string) error {
	if err := unreserveLua.Exec(ctx, d.client, d.keys(ids), nil).Error(); err != nil {
		return fmt.Errorf("release %d event ids: %w", len(ids), err)
	}
	return nil
}

func (d *Dedup) keys(ids []string) []string {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = d.prefix + id
	}
	return keys
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
