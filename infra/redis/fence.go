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
// If the fence is behind the log (it lost writes in a failover, or all its
// data in a restart without persistence), the next append to an aggregate
// reads the aggregate's records after the fence's position in the log and
// advances it; a lost fence costs a scan of the partition, aggregate by
// aggregate.
type Fence struct {
	client rueidis.Client
	prefix string
	cfg    Config
}

var _ kafka.Fence = (*Fence)(nil)

// NewFence returns the fence kept in client under prefix (default
// "evflow:fence:"). Of cfg it uses WaitReplicas and WaitTimeout: with
// Sentinel, a settled position counts once a replica has it, so a failover
// does not put the fence behind the log.
func NewFence(client rueidis.Client, prefix string, cfg Config) *Fence {
	if prefix == "" {
		prefix = "evflow:fence:"
	}
	cfg.setDefaults()
	return &Fence{client: client, prefix: prefix, cfg: cfg}
}

// claimLua claims an aggregate. KEYS[1] its hash; ARGV expected position,
// claim token, lease in ms. Returns {"ok"}, {"busy"}, {"moved", pos} or
// {"behind", pos, token of an expired claim or ""}.
var claimLua = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ = now + tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'pos', 'pending', 'until')
if not h[1] then
  if ARGV[1] ~= '0' then return {'behind', '0', ''} end
  redis.call('HSET', KEYS[1], 'pos', '0', 'pending', ARGV[2], 'until', until_)
  return {'ok'}
end
local pending = h[2] or ''
if pending ~= '' then
  if now < tonumber(h[3]) then return {'busy'} end
  return {'behind', h[1], pending}
end
if h[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'pending', ARGV[2], 'until', until_)
  return {'ok'}
end
if #ARGV[1] > #h[1] or (#ARGV[1] == #h[1] and ARGV[1] > h[1]) then return {'behind', h[1], ''} end
return {'moved', h[1]}
`)

// settleLua ends a claim. KEYS[1] the hash; ARGV claim token, position.
// Returns 1 if the token still held the claim.
const settleSrc = `
if redis.call('HGET', KEYS[1], 'pending') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'pos', ARGV[2], 'pending', '')
return 1
`

var settleLua = rueidis.NewLuaScript(settleSrc)

// advanceLua moves a fence that is behind. KEYS[1] the hash; ARGV from
// position, to position, expired claim token or "". Returns 1 if moved.
var advanceLua = rueidis.NewLuaScript(`
local h = redis.call('HMGET', KEYS[1], 'pos', 'pending')
if not h[1] then
  if ARGV[1] ~= '0' then return 0 end
  redis.call('HSET', KEYS[1], 'pos', ARGV[2], 'pending', '')
  return 1
end
if h[1] ~= ARGV[1] or (h[2] or '') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'pos', ARGV[2], 'pending', '')
return 1
`)

// Claim implements kafka.Fence.
func (f *Fence) Claim(ctx context.Context, key string, expected uint64, token string, lease time.Duration) error {
	res, err := claimLua.Exec(ctx, f.client, []string{f.prefix + key},
		[]string{strconv.FormatUint(expected, 10), token, strconv.FormatInt(lease.Milliseconds(), 10)}).AsStrSlice()
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
	case "behind":
		pos, err := strconv.ParseUint(res[1], 10, 64)
		if err != nil {
			return fmt.Errorf("claim %s: bad fence %v", key, res)
		}
		return &kafka.Behind{Key: key, Head: pos, Token: res[2]}
	}
	return fmt.Errorf("claim %s: unexpected answer %v", key, res)
}

// Settle implements kafka.Fence.
func (f *Fence) Settle(ctx context.Context, key, token string, pos uint64) (bool, error) {
	keys, args := []string{f.prefix + key}, []string{token, strconv.FormatUint(pos, 10)}
	var res rueidis.RedisResult
	var err error
	if f.cfg.WaitReplicas > 0 {
		res, err = evalAndWait(ctx, f.client, f.client.B().Eval().Script(settleSrc).Numkeys(1).Key(keys...).Arg(args...).Build(), f.cfg.WaitReplicas, f.cfg.WaitTimeout)
	} else {
		res = settleLua.Exec(ctx, f.client, keys, args)
	}
	n, aerr := res.AsInt64()
	if err == nil {
		err = aerr
	}
	if err != nil {
		return false, fmt.Errorf("settle %s: %w", key, err)
	}
	return n == 1, nil
}

// Advance implements kafka.Fence.
func (f *Fence) Advance(ctx context.Context, key string, from, to uint64, token string) error {
	err := advanceLua.Exec(ctx, f.client, []string{f.prefix + key},
		[]string{strconv.FormatUint(from, 10), strconv.FormatUint(max(from, to), 10), token}).Error()
	if err != nil {
		return fmt.Errorf("advance %s: %w", key, err)
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
