package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus/kafka"
)

// Fence is the Redis [kafka.Fence]: a hash per aggregate holding its last
// position and the claim of the append in progress, changed by Lua
// scripts, so every change is one atomic step, timed by the Redis server's
// clock alone.
//
// If Redis loses the fence (a restart without persistence), the next
// append to an aggregate finds its last position in the log (a scan of its
// partition), so losing it costs time, not correctness, but for appends
// in flight at the moment of the loss.
type Fence struct {
	client rueidis.Client
	prefix string
}

var _ kafka.Fence = (*Fence)(nil)

// NewFence returns the fence kept in client under prefix (default
// "evflow:fence:").
func NewFence(client rueidis.Client, prefix string) *Fence {
	if prefix == "" {
		prefix = "evflow:fence:"
	}
	return &Fence{client: client, prefix: prefix}
}

// claimLua claims an aggregate. KEYS[1] its hash; ARGV expected position,
// claim id, lease in ms. Returns {"ok"}, {"busy"}, {"moved", pos},
// {"missing"} or {"doubt", id, pos, since ms}.
var claimLua = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ = now + tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'pos', 'pending', 'since', 'until')
if not h[1] then
  if ARGV[1] ~= '0' then return {'missing'} end
  redis.call('HSET', KEYS[1], 'pos', '0', 'pending', ARGV[2], 'since', now, 'until', until_)
  return {'ok'}
end
local pending = h[2] or ''
if pending == ARGV[2] then
  redis.call('HSET', KEYS[1], 'until', until_)
  return {'ok'}
end
if pending ~= '' then
  if now < tonumber(h[4]) then return {'busy'} end
  return {'doubt', pending, h[1], h[3]}
end
if h[1] ~= ARGV[1] then return {'moved', h[1]} end
redis.call('HSET', KEYS[1], 'pending', ARGV[2], 'since', now, 'until', until_)
return {'ok'}
`)

// settleLua ends a claim. KEYS[1] the hash; ARGV claim id ("" for an
// aggregate without a hash), position ("0": unchanged). Returns 1 if done.
var settleLua = rueidis.NewLuaScript(`
if ARGV[1] == '' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  redis.call('HSET', KEYS[1], 'pos', ARGV[2], 'pending', '')
  return 1
end
if redis.call('HGET', KEYS[1], 'pending') ~= ARGV[1] then return 0 end
if ARGV[2] ~= '0' then redis.call('HSET', KEYS[1], 'pos', ARGV[2]) end
redis.call('HSET', KEYS[1], 'pending', '')
return 1
`)

// Claim implements kafka.Fence.
func (f *Fence) Claim(ctx context.Context, key string, expected uint64, id string, lease time.Duration) error {
	res, err := claimLua.Exec(ctx, f.client, []string{f.prefix + key},
		[]string{strconv.FormatUint(expected, 10), id, strconv.FormatInt(lease.Milliseconds(), 10)}).AsStrSlice()
	if err != nil {
		return fmt.Errorf("claim %s: %w", key, err)
	}
	switch res[0] {
	case "ok":
		return nil
	case "busy":
		return fmt.Errorf("%s: another append is in progress: %w", key, events.ErrConflict)
	case "moved":
		return fmt.Errorf("%s is at position %s, expected %d: %w", key, res[1], expected, events.ErrConflict)
	case "missing":
		// Events of the aggregate exist that the fence does not know (it
		// lost its data): its last one is found in the log.
		return &kafka.Doubt{Key: key}
	case "doubt":
		pos, err1 := strconv.ParseUint(res[2], 10, 64)
		since, err2 := strconv.ParseInt(res[3], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("claim %s: bad fence %v", key, res)
		}
		return &kafka.Doubt{Key: key, ID: res[1], Head: pos, Since: time.UnixMilli(since)}
	}
	return fmt.Errorf("claim %s: unexpected answer %v", key, res)
}

// Settle implements kafka.Fence.
func (f *Fence) Settle(ctx context.Context, key, id string, pos uint64) error {
	err := settleLua.Exec(ctx, f.client, []string{f.prefix + key}, []string{id, strconv.FormatUint(pos, 10)}).Error()
	if err != nil {
		return fmt.Errorf("settle %s: %w", key, err)
	}
	return nil
}

// Head implements kafka.Fence.
func (f *Fence) Head(ctx context.Context, key string) (uint64, error) {
	s, err := f.client.Do(ctx, f.client.B().Hget().Key(f.prefix+key).Field("pos").Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("head of %s: %w", key, err)
	}
	return strconv.ParseUint(s, 10, 64)
}
