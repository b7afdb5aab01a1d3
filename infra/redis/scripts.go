package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"

	"github.com/redis/rueidis"
)

// luaGreater compares two positions given as decimal strings without
// leading zeros, exactly over the whole uint64 range: Lua numbers are
// doubles (exact only to 2^53), and string comparison depends on the
// server's locale. Each half of a 20-digit number fits a double exactly.
const luaGreater = `
local function gt(a, b)
  if #a ~= #b then return #a > #b end
  local ha, hb = tonumber(string.sub(a, 1, 10)), tonumber(string.sub(b, 1, 10))
  if ha ~= hb then return ha > hb end
  return (tonumber(string.sub(a, 11)) or 0) > (tonumber(string.sub(b, 11)) or 0)
end
`

// luaFields names the hash fields (keys.go) inside the scripts.
const luaFields = `
local F_VERSION, F_POS, F_COUNT = '` + fieldVersion + `', '` + fieldPos + `', '` + fieldCount + `'
`

// releaseLua sets an app's current release if the change is newer.
// KEYS[1] release hash; ARGV version, position. Returns 1 if written.
const releaseLua = luaGreater + luaFields + `
local cur = redis.call('HGET', KEYS[1], F_POS) or '0'
if not gt(ARGV[2], cur) then return 0 end
redis.call('HSET', KEYS[1], F_VERSION, ARGV[1], F_POS, ARGV[2])
return 1
`

// launchesLua counts the launches of one (app, day) group that are above
// the stored position, adds their devices to the day's HyperLogLog and
// stores the highest position counted.
// KEYS[1] counter hash, KEYS[2] HyperLogLog; ARGV pairs (position, device)
// in strictly increasing position order (ApplyHot merges groups into that
// shape), so the launches to count are those from the first position above
// the stored one: usually the first, compared once. Returns the number of
// launches counted.
const launchesLua = luaGreater + luaFields + `
local cur = redis.call('HGET', KEYS[1], F_POS) or '0'
local i = 1
while i <= #ARGV and not gt(ARGV[i], cur) do i = i + 2 end
if i > #ARGV then return 0 end
local devs = {}
for j = i + 1, #ARGV, 2 do devs[#devs + 1] = ARGV[j] end
local n = #devs
redis.call('HINCRBY', KEYS[1], F_COUNT, n)
redis.call('HSET', KEYS[1], F_POS, ARGV[#ARGV - 1])
for k = 1, n, 1000 do
  redis.call('PFADD', KEYS[2], unpack(devs, k, math.min(k + 999, n)))
end
return n
`

// topLua adds the launches of one (app, day) group above the app's guard
// to the day's sorted set and moves the guard.
// KEYS[1] sorted set, KEYS[2] guard hash; ARGV app id, then positions in
// strictly increasing order (see launchesLua). Returns the number of
// launches added.
const topLua = luaGreater + luaFields + `
local cur = redis.call('HGET', KEYS[2], ARGV[1]) or '0'
local i = 2
while i <= #ARGV and not gt(ARGV[i], cur) do i = i + 1 end
local n = #ARGV - i + 1
if n <= 0 then return 0 end
redis.call('ZINCRBY', KEYS[1], n, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[#ARGV])
return n
`

// checkpointLua raises a checkpoint, never lowers it.
// KEYS[1] checkpoint hash; ARGV partition field, position. Returns 1 if written.
const checkpointLua = luaGreater + `
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
if not gt(ARGV[2], cur) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`

// The scripts, immutable after package initialisation.
var (
	scriptRelease    = newScript("release", releaseLua)
	scriptLaunches   = newScript("launches", launchesLua)
	scriptTop        = newScript("top", topLua)
	scriptCheckpoint = newScript("checkpoint", checkpointLua)
)

// script is a Lua script and its SHA-1, which EVALSHA calls it by.
type script struct {
	name, src, sha string
}

func newScript(name, src string) *script {
	sum := sha1.Sum([]byte(src))
	return &script{name: name, src: src, sha: hex.EncodeToString(sum[:])}
}

// call is one execution of a script.
type call struct {
	script     *script
	keys, args []string
}

// exec runs calls as one pipeline of EVALSHA and returns their results in
// order. A script the server does not have (a restarted or flushed server
// answers NOSCRIPT) did not run; those calls alone are sent again, as EVAL,
// in a second pipeline, which also caches the scripts for the next batch.
// Re-sending only them, out of their original order, is safe because no
// two calls of one batch guard the same record (ApplyHot merges the calls on
// one key; the top-of-day calls of different apps touch different members).
func (s *Store) exec(ctx context.Context, calls []call) []rueidis.RedisResult {
	b := s.client.B()
	cmds := make(rueidis.Commands, len(calls))
	for i, c := range calls {
		cmds[i] = b.Evalsha().Sha1(c.script.sha).Numkeys(int64(len(c.keys))).Key(c.keys...).Arg(c.args...).Build()
	}
	res := s.client.DoMulti(ctx, cmds...)
	var missing []int
	for i, r := range res {
		if e, ok := rueidis.IsRedisErr(r.Error()); ok && e.IsNoScript() {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return res
	}
	cmds = make(rueidis.Commands, len(missing))
	for j, i := range missing {
		c := calls[i]
		cmds[j] = b.Eval().Script(c.script.src).Numkeys(int64(len(c.keys))).Key(c.keys...).Arg(c.args...).Build()
	}
	for j, r := range s.client.DoMulti(ctx, cmds...) {
		res[missing[j]] = r
	}
	return res
}

// execErr runs calls and returns an error if any failed: the first
// failure, naming its script and first key, and how many failed in all.
func (s *Store) execErr(ctx context.Context, calls []call) error {
	var first error
	failed := 0
	for i, r := range s.exec(ctx, calls) {
		if err := r.Error(); err != nil {
			if first == nil {
				first = fmt.Errorf("%s script on %s: %w", calls[i].script.name, calls[i].keys[0], err)
			}
			failed++
		}
	}
	switch {
	case failed == 0:
		return nil
	case failed == 1:
		return first
	default:
		return fmt.Errorf("%d of %d writes failed, first: %w", failed, len(calls), first)
	}
}
