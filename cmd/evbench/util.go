package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// payload is a 256-byte event body.
var payload = func() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

// paced calls send at rate per second for d (or until ctx ends), in
// ticks of 1ms, and returns how many calls were made. send gets the
// intended send time of the call, so latencies include any lag of the
// pacer itself.
func paced(ctx context.Context, rate int, d time.Duration, send func(at time.Time) error) (int, error) {
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case now := <-tick.C:
			elapsed := now.Sub(start)
			if elapsed >= d {
				return sent, nil
			}
			due := int(elapsed.Seconds() * float64(rate))
			for ; sent < due; sent++ {
				at := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
				if err := send(at); err != nil {
					return sent, err
				}
			}
		}
	}
}

// percentiles returns the p-th percentiles (0-100) of ds, in milliseconds.
func percentiles(ds []time.Duration, ps ...float64) ([]float64, error) {
	if len(ds) == 0 {
		return nil, fmt.Errorf("no samples")
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	out := make([]float64, len(ps))
	for i, p := range ps {
		idx := int(p / 100 * float64(len(s)-1))
		out[i] = float64(s[idx]) / float64(time.Millisecond)
	}
	return out, nil
}

// rate is n events over d, per second.
func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// collect readies the stand for a measurement, so that each figure starts
// from the same clean state and not from the aftermath of the one before
// (the live run leaves hundreds of MB of garbage and dirty pages, and a
// stream of a million messages to remove). It collects garbage, as
// testing.B does before a benchmark, and returns the freed memory to the
// system at once rather than over the next seconds; has the kernel write
// out what was written; and waits until the process (the embedded
// nats-server included) and the disks are quiet.
func collect() {
	debug.FreeOSMemory()
	syscall.Sync()
	settle(100*time.Millisecond, 30*time.Second)
}

// settle waits until the process used less than a tenth of a core, and
// the disks were busy less than a tenth of the time, over one window, or
// for at most limit. The disk matters: removing a stream of a million
// messages (and the discards the file system sends for it) keeps the disk
// busy for seconds after the stream is gone, and a stream being written
// meanwhile waits on every write.
func settle(window, limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		cpu, io := cpuTime(), ioTime()
		time.Sleep(window)
		if cpuTime()-cpu < window/10 && ioTime()-io < window/10 {
			return
		}
	}
}

// ioTime is the time the disks have spent doing I/O, summed over the
// devices of /proc/diskstats (0 where it cannot be read).
func ioTime() time.Duration {
	b, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return 0
	}
	var ms int64
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 13 || strings.HasPrefix(f[2], "loop") || strings.HasPrefix(f[2], "ram") {
			continue
		}
		if n, err := strconv.ParseInt(f[12], 10, 64); err == nil {
			ms += n
		}
	}
	return time.Duration(ms) * time.Millisecond
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapMiB is the live heap after the last collection, in MiB.
func heapMiB() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc >> 20
}
