package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/platform"
	"github.com/evflow/evflow/infra/replay"
)

const replayUsage = `usage: evflow replay --projection NAME [--from beginning|SEQ|TIME] [flags]
       evflow replay --all [flags]

Rebuilds projections from the stream into a new generation of their
stores while the replicas keep running, swaps it in once it has caught up
and is verified, then removes the old generation. Interrupted, it resumes
when run again with the same --from.

`

// replayCmd rebuilds projections from the stream.
func replayCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, replayUsage); fs.PrintDefaults() }
	projection := fs.String("projection", "", "projection to rebuild: "+strings.Join(platform.Projections, ", "))
	all := fs.Bool("all", false, "rebuild every projection, one after the other")
	from := fs.String("from", "beginning", "where to start: beginning, a stream sequence, or an RFC 3339 time (then the live generation is copied first)")
	dryRun := fs.Bool("dry-run", false, "say what would be done, and do nothing")
	grace := fs.Duration("grace", replay.DefaultGrace, "wait between the swap and removing the old generation (at least 1s)")
	every := fs.Duration("progress-every", 3*time.Second, "how often to print a progress line when stderr is not a terminal")
	busFlags(fs, &cfg)
	config.URLVar(fs, &cfg.MongoURI, "mongo-uri", "MongoDB `URI` the replicas use (required)")
	fs.StringVar(&cfg.MongoDB, "mongo-db", envOr("mongo-db", cfg.MongoDB), "MongoDB database name")
	fs.IntVar(&cfg.MaxBatch, "max-batch", replay.DefaultMaxBatch, "most events applied in one batch")
	fs.DurationVar(&cfg.Linger, "linger", replay.DefaultLinger, "how long a batch that is not full waits for more events (0: not at all)")
	fs.IntVar(&cfg.MongoMaxBulk, "mongo-max-bulk", cfg.MongoMaxBulk, "most operations in one MongoDB bulk write (0: 16 on FerretDB, 500 otherwise)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if cfg.Bus != config.BusJetStream && cfg.Bus != config.BusKafka {
		return usageError{fmt.Errorf("--bus %q is not jetstream or kafka", cfg.Bus)}
	}
	if *grace < time.Second {
		return usageError{fmt.Errorf("--grace %s: at least 1s, for the replicas to follow the swap", *grace)}
	}
	opts := platform.ReplayOptions{DryRun: *dryRun, Grace: *grace}
	switch {
	case *all && *projection != "":
		return usageError{errors.New("--all and --projection exclude each other")}
	case *all:
		opts.Projections = platform.Projections
	case *projection == "":
		return usageError{errors.New("--projection (or --all) is required")}
	default:
		opts.Projections = []string{*projection}
	}
	f, err := replay.ParseFrom(*from)
	if err != nil {
		return usageError{fmt.Errorf("--from: %w", err)}
	}
	opts.From = f

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	p := newProgress(stderr, *every)
	opts.Progress, opts.ProgressEvery = p.update, p.every
	plans, sums, err := platform.Replay(ctx, cfg, newLogger(stderr, config.Config{LogLevel: "warn"}), opts)
	p.finish()
	if *dryRun {
		for _, pl := range plans {
			verb := "build a new generation"
			if pl.Resume {
				verb = "resume generation " + pl.Building
			}
			seed := ""
			if pl.Seed {
				seed = fmt.Sprintf(", starting from a copy of %q", pl.Live)
			}
			fmt.Fprintf(stdout, "%s: would %s from %s%s (%d events to apply now), swap it in for %q and remove that\n",
				pl.Projection, verb, pl.From, seed, pl.Pending, pl.Live)
		}
	}
	for _, s := range sums {
		fmt.Fprintf(stdout, "%s: %d events in %s (%.0f events/s); generation %q live, %q removed\n",
			s.Projection, s.Events, s.Duration.Round(time.Millisecond), s.Rate(), s.Generation, s.Previous)
	}
	if errors.As(err, new(platform.UsageError)) {
		return usageError{err}
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted; run the same command again: the projection cut short resumes (with --all, those already done are rebuilt again): %w", err)
	}
	return err
}

// busFlags registers the flags that locate running replicas' event log and
// Redis, defaults from the environment.
func busFlags(fs *flag.FlagSet, cfg *config.Config) {
	fs.StringVar(&cfg.Bus, "bus", envOr("bus", cfg.Bus), "the replicas' event log: jetstream or kafka")
	config.URLVar(fs, &cfg.NATSURL, "nats-url", "NATS `URLs` of the replicas' bus (with --bus jetstream)")
	fs.StringVar(&cfg.KafkaBrokers, "kafka-brokers", envOr("kafka-brokers", ""), "Kafka brokers' host:port, comma-separated (with --bus kafka)")
	fs.StringVar(&cfg.KafkaTopic, "kafka-topic", envOr("kafka-topic", cfg.KafkaTopic), "Kafka topic of the events (with --bus kafka)")
	fs.StringVar(&cfg.RedisAddr, "redis-addr", envOr("redis-addr", ""), "Redis host:port the replicas use (or --redis-sentinels)")
	fs.StringVar(&cfg.RedisSentinels, "redis-sentinels", envOr("redis-sentinels", ""), "Redis Sentinels' host:port, comma-separated, as the replicas use")
	fs.StringVar(&cfg.RedisMasterSet, "redis-master-set", envOr("redis-master-set", ""), "name under which the Sentinels watch the Redis primary")
	fs.IntVar(&cfg.RedisDB, "redis-db", envInt("redis-db", 0), "Redis logical database the replicas use")
	cfg.SecurityFlags(fs)
}

// envInt is envOr for a whole number; a value that does not parse is -1,
// which the command rejects naming the flag.
func envInt(flag string, def int) int {
	v, err := strconv.Atoi(envOr(flag, strconv.Itoa(def)))
	if err != nil {
		return -1
	}
	return v
}

// envOr is the flag's environment variable, or def.
func envOr(flag, def string) string {
	if v, ok := os.LookupEnv(config.EnvName(flag)); ok {
		return v
	}
	return def
}

// progress shows a replay's progress: a bar on a terminal, otherwise one
// plain line every few seconds.
type progress struct {
	w     io.Writer
	tty   bool
	every time.Duration

	mu   sync.Mutex
	bar  *progressbar.ProgressBar
	name string
}

func newProgress(w io.Writer, every time.Duration) *progress {
	p := &progress{w: w, every: every}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty, p.every = true, 200*time.Millisecond
	}
	return p
}

func (p *progress) update(pr replay.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		rate := 0.0
		if s := pr.Elapsed.Seconds(); s > 0 {
			rate = float64(pr.Done) / s
		}
		eta := "-"
		if rate > 0 && pr.Total > pr.Done {
			eta = (time.Duration(float64(pr.Total-pr.Done)/rate) * time.Second).Round(time.Second).String()
		}
		fmt.Fprintf(p.w, "replay %s: %d/%d events, %.0f events/s, ETA %s\n", pr.Projection, pr.Done, pr.Total, rate, eta)
		return
	}
	if p.bar == nil || p.name != pr.Projection {
		p.finishLocked()
		p.name = pr.Projection
		p.bar = progressbar.NewOptions64(int64(pr.Total), progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("replay "+pr.Projection), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("events"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionFullWidth(),
			progressbar.OptionThrottle(100*time.Millisecond))
	}
	p.bar.ChangeMax64(int64(pr.Total))
	_ = p.bar.Set64(int64(pr.Done))
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
}

func (p *progress) finishLocked() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
		p.bar = nil
	}
}
