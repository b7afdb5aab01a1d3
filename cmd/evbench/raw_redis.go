package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// rawIdempotentLua applies an event once: it marks the event seen (KEYS[1],
// expiring after ARGV[1] seconds) and, only if it was not seen before,
// increments the counter KEYS[2]. It returns the new count, or 0 for a
// duplicate. The raw Redis ceiling and the naive baseline's handler both
// run it.
var rawIdempotentLua = rueidis.NewLuaScript(`
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
	return redis.call('INCR', KEYS[2])
end
return 0`)

// rawDedupTTL is how long a dedup key lives, seconds.
const rawDedupTTL = "86400"

// rawRedisWorkers is how many goroutines issue Lua calls at once: enough
// for rueidis to fill large auto-pipelined batches.
const rawRedisWorkers = 256

// rawRedisConnect returns a rueidis client of the stand's redis-server with
// rueidis' defaults, as infra/redis configures it (auto-pipelining is on by
// default). tune, for the raw ceiling, sends everything on one connection
// and lets the write loop wait up to 20µs to fill a batch: in this
// program's runs that did 1.3-1.6× the ops/s of the defaults, with the
// client, not redis-server, the bottleneck on 2 cores.
func rawRedisConnect(st *stand, tune bool) (rueidis.Client, error) {
	o := rueidis.ClientOption{InitAddress: []string{st.RedisAddr}, DisableCache: true}
	if tune {
		o.PipelineMultiplex = -1
		o.MaxFlushDelay = 20 * time.Microsecond
	}
	c, err := rueidis.NewClient(o)
	if err != nil {
		return nil, fmt.Errorf("connect to redis-server: %w", err)
	}
	return c, nil
}

// rawRedis runs n idempotent Lua ops (EVALSHA of [rawIdempotentLua], each
// with its own dedup key, counters spread over 16 keys) from
// rawRedisWorkers goroutines on one rueidis client (tuned, see
// [rawRedisConnect]), which pipelines the concurrent calls on its
// connection, and returns how long they took. The
// script is loaded before the clock starts. Every op must apply (no
// duplicates). Method of raw.redis.
func rawRedis(ctx context.Context, st *stand, n int) (time.Duration, error) {
	c, err := rawRedisConnect(st, true)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// The dedup keys of an earlier round would take these ops for
	// duplicates: start from an empty database (the raw and naive
	// measurements' own, database 0).
	if err := c.Do(ctx, c.B().Flushdb().Build()).Error(); err != nil {
		return 0, fmt.Errorf("empty the raw measurements' database: %w", err)
	}
	if err := rawIdempotentLua.Exec(ctx, c, []string{"rawbench:warm", "rawbench:warmcount"}, []string{rawDedupTTL}).Error(); err != nil {
		return 0, fmt.Errorf("load the Lua script: %w", err)
	}
	bound := rawBound(n)
	rctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var next, applied atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, rawRedisWorkers)
	start := time.Now()
	for range rawRedisWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				keys := []string{"rawbench:seen:" + strconv.Itoa(i), "rawbench:count:" + strconv.Itoa(i%16)}
				v, err := rawIdempotentLua.Exec(rctx, c, keys, []string{rawDedupTTL}).AsInt64()
				if err != nil {
					errs <- fmt.Errorf("op %d: %w", i, err)
					cancel()
					return
				}
				if v > 0 {
					applied.Add(1)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("%d of %d ops applied (bound %s): %w", applied.Load(), n, bound, err)
	}
	if got := applied.Load(); got != int64(n) {
		return 0, fmt.Errorf("%d of %d ops applied: the others were taken for duplicates", got, n)
	}
	return took, nil
}
