// Command evbench measures evflow against the raw ceilings of its parts and
// against a naive Watermill baseline, side by side in one run on the same
// machine, and checks the ratios the README promises.
//
//	evbench            # the full run (under 10 minutes), one table
//	evbench --json     # the same figures as JSON
//	evbench --smoke    # a few seconds, small sizes, two rounds, no targets (CI)
//
// It starts what it measures on loopback: an embedded nats-server with file
// storage, a redis-server process (it must be on PATH) and an embedded
// FerretDB. It exits 1, with a line naming each target missed, when a
// target is missed.
//
// Every measurement runs --rounds times (3), the raw ceilings, the naive
// baseline and evflow in turn, and a figure is the median of its rounds:
// on a shared machine one figure moves by 20–50% from one minute to the
// next, and a ratio of two single measurements taken a minute apart
// measures that as much as evflow.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// config is what a run measures and how long.
type config struct {
	// Events is the size of the backlogs and publish runs.
	Events int
	// Live is how long the live end-to-end run lasts.
	Live time.Duration
	// Rate is the fixed publish rate of the latency runs, events/s.
	Rate int
	// LatencyFor is how long each latency run records, after LatencyWarm
	// at the same rate unrecorded: the figures are of a steady state, not
	// of the first seconds (heap growth, first GC cycles, connections'
	// buffers), in the raw run and evflow's alike.
	LatencyFor, LatencyWarm time.Duration
	// Partitions of the event stream.
	Partitions int
	// Rounds is how many times every measurement runs; a figure is the
	// median of its rounds.
	Rounds int
	// Smoke: tiny sizes, no targets.
	Smoke bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("evbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config{Events: 200_000, Live: 30 * time.Second, Rate: 10_000, LatencyFor: 10 * time.Second, LatencyWarm: 3 * time.Second, Partitions: 16, Rounds: 3}
	asJSON := fs.Bool("json", false, "print the figures as JSON")
	fs.BoolVar(&cfg.Smoke, "smoke", false, "a few seconds with small sizes, no targets: checks the program still runs")
	fs.IntVar(&cfg.Events, "events", cfg.Events, "events per backlog and publish run")
	fs.DurationVar(&cfg.Live, "live", cfg.Live, "length of the live end-to-end run (at least 30s for the target)")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "fixed publish rate of the latency runs, events/s")
	fs.DurationVar(&cfg.LatencyFor, "latency-for", cfg.LatencyFor, "length of each latency run, recorded")
	fs.DurationVar(&cfg.LatencyWarm, "latency-warm", cfg.LatencyWarm, "warm-up of each latency run at the same rate, not recorded")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "how many times every measurement runs; a figure is the median of its rounds")
	verbose := fs.Bool("v", false, "log progress to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Smoke {
		cfg.Events, cfg.Live, cfg.LatencyFor, cfg.LatencyWarm, cfg.Rate, cfg.Rounds = 2_000, 2*time.Second, time.Second, 200*time.Millisecond, 1_000, 2
	}
	if cfg.Events < 100 || cfg.Rate < 1 || cfg.Live <= 0 || cfg.LatencyFor <= 0 || cfg.LatencyWarm < 0 || cfg.Rounds < 1 {
		fmt.Fprintln(stderr, "evbench: --events must be at least 100, --rate and --rounds at least 1, --live and --latency-for positive, --latency-warm not negative")
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := startStand(ctx, log)
	if err != nil {
		fmt.Fprintf(stderr, "evbench: %v\n", err)
		return 1
	}
	defer st.Close()
	r := &results{}
	began := time.Now()
	for round := 1; round <= cfg.Rounds; round++ {
		collect()
		log.Info("round", "round", round, "goroutines", runtime.NumGoroutine(), "heap_mib", heapMiB())
		for _, sec := range sections {
			log.Info("measuring", "round", round, "section", sec.name)
			if err := sec.run(ctx, st, cfg, r); err != nil {
				fmt.Fprintf(stderr, "evbench: round %d: %s: %v\n", round, sec.name, err)
				return 1
			}
		}
	}
	r.Took = time.Since(began)
	var missed []string
	if !cfg.Smoke {
		missed = r.check()
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r.report(missed)); err != nil {
			fmt.Fprintf(stderr, "evbench: %v\n", err)
			return 1
		}
	} else {
		r.print(stdout, missed, cfg.Smoke)
	}
	if len(missed) > 0 {
		for _, m := range missed {
			fmt.Fprintf(stderr, "evbench: target missed: %s\n", m)
		}
		return 1
	}
	return 0
}

// section is one group of measurements.
type section struct {
	name string
	run  func(ctx context.Context, st *stand, cfg config, r *results) error
}

// sections run in this order; each adds its figures to the results.
var sections = []section{
	{"raw ceilings", measureRaw},
	{"naive Watermill baseline", measureNaive},
	{"evflow", measureEvflow},
}
