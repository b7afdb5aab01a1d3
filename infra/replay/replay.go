// Package replay rebuilds a projection from the stream into a new
// generation of its store (see infra/generation), beside the live one, while
// live processing goes on; once the new generation has caught up with the
// stream's head and is verified, it is swapped in, and the old one removed.
//
// A rebuild applies events with the same runner as live processing
// (infra/projector), so batching, idempotency and dead letters behave the
// same, and it stores checkpoints in the new generation as it goes: a
// replay that was interrupted resumes from them when run again.
//
// A replay from the beginning starts from an empty generation. A replay
// from a later position (a sequence or a time) starts from a copy of the
// live generation, then applies every event from that position on: the
// way to bring a projection restored from an older backup up to date.
// Events the copy already holds are no-ops (every write is conditional on
// its position); the position must not be later than the backup's.
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/generation"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/projections"
)

// DefaultGrace is how long a replay waits, after swapping a generation in,
// before it removes the old one: replicas follow the swap within a quarter
// of a second and finish the batch in hand.
const DefaultGrace = 5 * time.Second

// Defaults of a rebuild's batches: larger and slower to close than live
// processing's (projector.DefaultMaxBatch, projector.DefaultLinger), since
// a rebuild reads a backlog and no one waits for a single event, each
// store round trip carries more events.
const (
	DefaultMaxBatch = 1000
	DefaultLinger   = 20 * time.Millisecond
)

// From is where a replay starts: the beginning of the stream, a stream
// sequence, or a time.
type From struct {
	Seq  uint64    // first position to apply; 0 with a zero Time: the beginning
	Time time.Time // first event stored at or after Time
}

// Beginning reports whether f is the beginning of the stream.
func (f From) Beginning() bool { return f.Seq <= 1 && f.Time.IsZero() }

// String is f as [ParseFrom] reads it.
func (f From) String() string {
	switch {
	case !f.Time.IsZero():
		return f.Time.UTC().Format(time.RFC3339Nano)
	case f.Beginning():
		return "beginning"
	default:
		return strconv.FormatUint(f.Seq, 10)
	}
}

// ParseFrom reads "beginning", a stream sequence (≥ 1) or an RFC 3339 time.
func ParseFrom(s string) (From, error) {
	if s == "" || s == "beginning" {
		return From{}, nil
	}
	if seq, err := strconv.ParseUint(s, 10, 64); err == nil {
		if seq == 0 {
			return From{}, errors.New("a sequence starts at 1")
		}
		return From{Seq: seq}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return From{}, fmt.Errorf("%q is neither beginning, a stream sequence nor an RFC 3339 time", s)
	}
	return From{Time: t}, nil
}

// Target is a projection to rebuild.
type Target struct {
	// Name is the projection's name.
	Name string
	// Store keeps its generations.
	Store generation.Store
	// Open returns the projection over generation gen of its store.
	Open func(gen string) (projections.Projector, error)
	// Volatile reports that the store may lose its data, its records
	// included (Redis without persistence): a missing record then means
	// the data is gone, and the replay records it as the replicas do
	// (generation.Lost), so that they rebuild and answer reads from
	// elsewhere meanwhile, rather than serve an empty generation.
	Volatile bool
}

// Config configures a replay.
type Config struct {
	// Log reads the event log; NewSubscriber subscribes to its
	// partitions, Topic and Partitions name them.
	Log           bus.Log
	NewSubscriber projector.NewSubscriber
	Topic         string
	Partitions    int
	// From is where the rebuild starts.
	From From
	// MaxBatch bounds the events applied at once; default [DefaultMaxBatch].
	MaxBatch int
	// Linger is how long a batch that is not full waits for more events;
	// default [DefaultLinger], negative: not at all.
	Linger time.Duration
	// DeadLetters parks what cannot be applied, as live processing does.
	DeadLetters projector.DeadLetterBox
	// Grace is the wait between the swap and removing the old generation;
	// default [DefaultGrace].
	Grace time.Duration
	// Progress, when set, is called about every ProgressEvery while events
	// are applied, and once at the end.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.Grace <= 0 {
		c.Grace = DefaultGrace
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 200 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Progress is how far a rebuild is.
type Progress struct {
	Projection string
	// Done counts the events applied (or parked); Total is Done plus what
	// remains, which grows while events are published.
	Done, Total uint64
	Elapsed     time.Duration
}

// Plan is what a replay of a projection does, as far as it is known
// before it starts.
type Plan struct {
	Projection string
	// Live is the generation in use; Building, when Resume, the one the
	// interrupted replay was filling (a new one is named when it starts).
	Live, Building string
	// Resume reports that Building is an interrupted replay's, resumed
	// from its checkpoints; otherwise a new generation is built.
	Resume bool
	// Seed reports that Building starts as a copy of Live.
	Seed bool
	// From is where the rebuild starts, as [From.String] writes it.
	From string
	// Pending counts the events to apply, as of now.
	Pending uint64
}

// Summary is what a replay did.
type Summary struct {
	Projection string
	// Generation is the generation swapped in; Previous the one removed.
	Generation, Previous string
	// Events counts the events applied (or parked) by this run.
	Events   uint64
	Duration time.Duration
}

// Rate is the summary's events per second.
func (s Summary) Rate() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Events) / s.Duration.Seconds()
}

// Prepare works out the plan of a replay of t without changing anything.
func Prepare(ctx context.Context, cfg Config, t Target) (Plan, error) {
	cfg.setDefaults()
	rec, found, err := t.Store.Load(ctx, t.Name)
	if err != nil {
		return Plan{}, fmt.Errorf("replay %s: %w", t.Name, err)
	}
	if !found {
		rec = generation.Record{Live: generation.Original, Ready: true}
	}
	plan := Plan{Projection: t.Name, Live: rec.Live, From: cfg.From.String(), Seed: !cfg.From.Beginning()}
	if rec.Building != "" {
		if rec.From != plan.From {
			return plan, fmt.Errorf("replay %s: the replay from %s into generation %s was interrupted; run it again with --from %s to resume it",
				t.Name, rec.From, rec.Building, rec.From)
		}
		plan.Building, plan.Resume = rec.Building, true
	}
	floor, err := startAfter(ctx, cfg)
	if err != nil {
		return plan, fmt.Errorf("replay %s: %w", t.Name, err)
	}
	var from []uint64
	if plan.Resume && (!plan.Seed || rec.Seeded) {
		proj, err := t.Open(plan.Building)
		if err != nil {
			return plan, fmt.Errorf("replay %s: %w", t.Name, err)
		}
		if from, err = checkpoints(ctx, proj, cfg.Partitions); err != nil {
			return plan, fmt.Errorf("replay %s: %w", t.Name, err)
		}
	}
	for p := range cfg.Partitions {
		after := floor[p]
		if from != nil {
			after = max(after, from[p])
		}
		n, err := cfg.Log.Pending(ctx, p, after)
		if err != nil {
			return plan, fmt.Errorf("replay %s: %w", t.Name, err)
		}
		plan.Pending += n
	}
	return plan, nil
}

// Run rebuilds t into a new generation (or resumes an interrupted
// rebuild), swaps it in once it has caught up with the stream and is
// verified, then removes the old generation.
func Run(ctx context.Context, cfg Config, t Target) (Summary, error) {
	cfg.setDefaults()
	began := time.Now()
	sum := Summary{Projection: t.Name}
	wrap := func(err error) error { return fmt.Errorf("replay %s: %w", t.Name, err) }

	rec, err := begin(ctx, cfg, t)
	if err != nil {
		return sum, wrap(err)
	}
	if !cfg.From.Beginning() && !rec.Seeded {
		if !rec.Ready {
			return sum, wrap(fmt.Errorf("the live generation %q is being rebuilt, not complete: a copy of it is no start; replay --from beginning", rec.Live))
		}
		if err := t.Store.Copy(ctx, t.Name, rec.Live, rec.Building); err != nil {
			return sum, wrap(err)
		}
		if rec, err = change(ctx, t, rec.Building, func(r *generation.Record) { r.Seeded = true }); err != nil {
			return sum, wrap(err)
		}
	}
	sum.Generation, sum.Previous = rec.Building, rec.Live

	floor, err := startAfter(ctx, cfg)
	if err != nil {
		return sum, wrap(err)
	}
	proj, err := t.Open(rec.Building)
	if err != nil {
		return sum, wrap(err)
	}
	heads, err := build(ctx, cfg, proj, floor, began, &sum)
	if err != nil {
		return sum, wrap(err)
	}
	if err := verify(ctx, proj, heads, floor); err != nil {
		return sum, wrap(err)
	}

	var old generation.Record
	if _, err := change(ctx, t, rec.Building, func(r *generation.Record) {
		old = *r
		*r = generation.Record{Live: rec.Building, Ready: true}
	}); err != nil {
		return sum, wrap(err)
	}
	cfg.Logger.Info("replay: generation swapped in", "projection", t.Name, "generation", rec.Building, "previous", old.Live)
	sum.Previous = old.Live
	select {
	case <-time.After(cfg.Grace):
	case <-ctx.Done():
		return sum, wrap(fmt.Errorf("swapped in, but the old generation %q was not removed: %w", old.Live, ctx.Err()))
	}
	drop := []string{old.Live}
	if !old.Ready && old.Previous != old.Live {
		drop = append(drop, old.Previous) // the replicas' rebuild, cut short, had not removed it yet
	}
	for _, gen := range drop {
		if err := t.Store.Drop(ctx, t.Name, gen); err != nil {
			return sum, wrap(fmt.Errorf("swapped in, but: %w", err))
		}
	}
	sum.Duration = time.Since(began)
	return sum, nil
}

// begin loads t's record, creating it when missing, and records the
// generation to build, or returns the one an interrupted replay was
// building.
func begin(ctx context.Context, cfg Config, t Target) (generation.Record, error) {
	rec, found, err := t.Store.Load(ctx, t.Name)
	if err != nil {
		return rec, err
	}
	if !found {
		initial := generation.Record{Live: generation.Original, Ready: true}
		if t.Volatile {
			heads, err := cfg.Log.Heads(ctx)
			if err != nil {
				return rec, err
			}
			initial = generation.Lost(time.Now(), heads, generation.Original)
			cfg.Logger.Warn("replay: the store lost its data; the replicas rebuild it, and reads are answered from elsewhere until this replay swaps its generation in",
				"projection", t.Name)
		}
		if rec, err = t.Store.Create(ctx, t.Name, initial); err != nil {
			return rec, err
		}
	}
	if rec.Building != "" {
		if rec.From != cfg.From.String() {
			return rec, fmt.Errorf("the replay from %s into generation %s was interrupted; run it again with --from %s to resume it",
				rec.From, rec.Building, rec.From)
		}
		cfg.Logger.Info("replay: resuming an interrupted rebuild", "projection", t.Name, "generation", rec.Building, "from", rec.From)
		return rec, nil
	}
	next := rec
	next.Building, next.From, next.Seeded = generation.New(time.Now()), cfg.From.String(), false
	ok, err := t.Store.Update(ctx, t.Name, rec, next)
	if err != nil {
		return rec, err
	}
	if !ok {
		return rec, errors.New("the generation record changed while the replay started (another replay?); run it again")
	}
	cfg.Logger.Info("replay: building a new generation", "projection", t.Name, "generation", next.Building, "live", next.Live, "from", next.From)
	return next, nil
}

// change applies f to t's record, as long as building is still the
// generation being built, by compare-and-set: it reloads and applies f
// again when a replica changed the record meanwhile (marking a rebuilt
// generation ready).
func change(ctx context.Context, t Target, building string, f func(*generation.Record)) (generation.Record, error) {
	for range 10 {
		cur, found, err := t.Store.Load(ctx, t.Name)
		if err != nil {
			return cur, err
		}
		if !found || cur.Building != building {
			return cur, fmt.Errorf("generation %s is no longer the one being built (the store lost or changed its record during the replay); run the replay again", building)
		}
		next := cur
		f(&next)
		ok, err := t.Store.Update(ctx, t.Name, cur, next)
		if err != nil || ok {
			return next, err
		}
	}
	return generation.Record{}, errors.New("the generation record keeps changing; run the replay again")
}

// startAfter is, per partition, the position after which the rebuild
// applies events.
func startAfter(ctx context.Context, cfg Config) ([]uint64, error) {
	if !cfg.From.Time.IsZero() {
		return cfg.Log.StartsAt(ctx, cfg.From.Time)
	}
	out := make([]uint64, cfg.Partitions)
	if cfg.From.Seq > 0 {
		for p := range out {
			out[p] = cfg.From.Seq - 1
		}
	}
	return out, nil
}

// checkpoints reads every partition's checkpoint of proj.
func checkpoints(ctx context.Context, proj projections.Projector, partitions int) ([]uint64, error) {
	out := make([]uint64, partitions)
	for p := range out {
		c, err := proj.Checkpoint(ctx, p)
		if err != nil {
			return nil, err
		}
		out[p] = c
	}
	return out, nil
}

// verify checks that every partition's checkpoint reached the head the
// rebuild caught up with.
func verify(ctx context.Context, proj projections.Projector, heads, floor []uint64) error {
	cps, err := checkpoints(ctx, proj, len(heads))
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for p, h := range heads {
		if h > floor[p] && cps[p] < h {
			return fmt.Errorf("verify: partition %d stored up to %d, short of its head %d", p, cps[p], h)
		}
	}
	return nil
}
