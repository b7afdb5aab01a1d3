package platform

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/evflow/evflow/infra/generation"
	"github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/redis"
	"github.com/evflow/evflow/projections"
)

// followEvery is how often a replica reads the generation records: it
// bounds how long reads are answered from a Redis that just lost its data
// (one HGETALL and two finds by _id each time).
const followEvery = 250 * time.Millisecond

// stepTimeout bounds the store calls of one look at a projection's record.
const stepTimeout = 5 * time.Second

// generations keeps a replica on each projection's live generation: its
// runners apply it and its readers read it. A replay swaps a generation in
// by saving its record; the replica follows within followEvery.
//
// The Redis projection rebuilds itself: a Redis that lost its data lost
// the projection's record with it, and the first replica to notice
// creates a new generation, which every replica then fills with the
// partitions it owns. Until it has caught up, reads the Redis projection
// answers are served from MongoDB where they can be (see liveStores).
type generations struct {
	log      *slog.Logger
	heads    func(ctx context.Context) ([]uint64, error)
	live     liveStores
	followed []*followed
	rebuilds atomic.Uint64
	// rebuildsTotal is rebuilds, per projection, for Prometheus.
	rebuildsTotal *prometheus.CounterVec
	ctx           context.Context // follow's: outlives a step
}

// followed is one projection's generation as this replica uses it.
type followed struct {
	name  string
	store generation.Store
	// auto: a missing record means the store lost its data (Redis).
	auto bool
	// open returns the projection over gen.
	open func(gen string) (projections.Projector, error)
	// publish points the readers at gen, complete or not (ready).
	publish func(gen string, ready bool) error
	runner  *projector.Runner

	gen   atomic.Value // string: the generation applied now
	ready atomic.Bool
}

func (f *followed) generation() string { s, _ := f.gen.Load().(string); return s }

// newGenerations reads every projection's record and opens its live
// generation (creating the Redis record when it is missing).
func newGenerations(ctx context.Context, log *slog.Logger, reg prometheus.Registerer, d *Docs, h *Hot, heads func(context.Context) ([]uint64, error)) (*generations, error) {
	g := &generations{log: log, heads: heads,
		rebuildsTotal: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "evflow_projection_rebuilds_total",
			Help: "Rebuilds of a projection this replica took part in because its store lost its data.",
		}, []string{"projection"})}
	mgens, err := mongo.NewGenerations(d.DB, d.Config)
	if err != nil {
		return nil, err
	}
	docs := func(gen string) (*mongo.Store, error) {
		cfg := d.Config
		cfg.Suffix = gen
		return mongo.NewStore(d.DB, cfg)
	}
	publishDocs := func(ptr *atomic.Pointer[mongo.Store]) func(string, bool) error {
		return func(gen string, _ bool) error {
			s, err := docs(gen)
			if err == nil {
				ptr.Store(s)
			}
			return err
		}
	}
	hot := func(gen string) (*redis.Store, error) {
		c := h.Config
		c.Prefix = redis.PrefixOf(gen)
		return redis.New(h.Client, c)
	}
	g.followed = []*followed{
		{name: projections.AppsName, store: mgens, publish: publishDocs(&g.live.apps), open: func(gen string) (projections.Projector, error) {
			s, err := docs(gen)
			return projections.NewApps(s), err
		}},
		{name: projections.DailyStatsName, store: mgens, publish: publishDocs(&g.live.stats), open: func(gen string) (projections.Projector, error) {
			s, err := docs(gen)
			return projections.NewDailyStats(s), err
		}},
		{name: projections.RedisName, store: redis.NewGenerations(h.Client), auto: true,
			open: func(gen string) (projections.Projector, error) {
				s, err := hot(gen)
				return projections.NewRedis(s), err
			},
			publish: func(gen string, ready bool) error {
				s, err := hot(gen)
				if err == nil {
					g.live.hot.Store(&hotView{store: s, ready: ready})
				}
				return err
			}},
	}
	for _, f := range g.followed {
		rec, err := g.record(ctx, f, true)
		if err != nil {
			return nil, err
		}
		if err := f.publish(rec.Live, rec.Ready); err != nil {
			return nil, err
		}
		f.gen.Store(rec.Live)
		f.ready.Store(rec.Ready)
		if !rec.Ready {
			g.rebuilding(f, rec.Live)
		}
	}
	return g, nil
}

// projectors returns the live projections, to build the runners with.
func (g *generations) projectors() ([]projections.Projector, error) {
	var out []projections.Projector
	for _, f := range g.followed {
		p, err := f.open(f.generation())
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// follow keeps the runners (given in the order of projectors) on the live
// generations until ctx ends.
func (g *generations) follow(ctx context.Context, runners []*projector.Runner) {
	g.ctx = ctx
	for i, r := range runners {
		g.followed[i].runner = r
	}
	t := time.NewTicker(followEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, f := range g.followed {
			if err := g.step(ctx, f); err != nil && ctx.Err() == nil {
				g.log.Warn("generation not followed", "projection", f.name, "err", err)
			}
		}
	}
}

// step brings f onto its record's live generation, and marks a rebuilt
// generation ready once every partition has reached its target.
func (g *generations) step(ctx context.Context, f *followed) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	rec, err := g.record(ctx, f, false)
	if err != nil {
		return err
	}
	if rec.Live != f.generation() {
		p, err := f.open(rec.Live)
		if err != nil {
			return err
		}
		// Readers first: to the new generation, or elsewhere while it is
		// not complete; then the runner.
		if err := f.publish(rec.Live, rec.Ready); err != nil {
			return err
		}
		f.ready.Store(rec.Ready)
		if !rec.Ready {
			g.rebuilding(f, rec.Live)
		}
		if err := f.runner.Switch(p); err != nil {
			return err
		}
		g.log.Info("switched to a new generation", "projection", f.name, "generation", rec.Live, "previous", f.generation(), "ready", rec.Ready)
		f.gen.Store(rec.Live)
	}
	ready := rec.Ready
	if !ready {
		if ready, err = g.caughtUp(ctx, f, rec); err != nil {
			return err
		}
	}
	if ready != f.ready.Load() {
		if err := f.publish(rec.Live, ready); err != nil {
			return err
		}
		f.ready.Store(ready)
	}
	return nil
}

// record loads f's record. A missing Redis record means Redis lost its
// data (or never had any): a new generation is created, to be rebuilt from
// the stream; a new one, because replicas that have not noticed yet may
// still write into the old one. Only a replica starting on an empty
// stream (a new install) records the original generation as complete.
// So a Redis holding data written before generations existed is rebuilt
// once: data without a record cannot be told from what replicas wrote
// into a Redis that had just lost its data.
func (g *generations) record(ctx context.Context, f *followed, starting bool) (generation.Record, error) {
	rec, found, err := f.store.Load(ctx, f.name)
	if err != nil || found {
		return rec, err
	}
	if !f.auto {
		return generation.Record{Live: generation.Original, Ready: true}, nil
	}
	heads, err := g.headsWhenAnswered(ctx)
	if err != nil {
		return rec, fmt.Errorf("generation of %s: %w", f.name, err)
	}
	if starting && slices.Max(append(heads, 0)) == 0 {
		return f.store.Create(ctx, f.name, generation.Record{Live: generation.Original, Ready: true})
	}
	rec, err = f.store.Create(ctx, f.name, generation.Lost(time.Now(), heads, f.generation()))
	if err != nil {
		return rec, fmt.Errorf("generation of %s: %w", f.name, err)
	}
	return rec, nil
}

// headsWhenAnswered reads the partition heads, trying again every 250ms
// with 2s per attempt until ctx ends: a stream whose cluster is still
// electing its leader does not answer, and one attempt must not use up
// the start's whole budget.
func (g *generations) headsWhenAnswered(ctx context.Context) ([]uint64, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		heads, err := g.heads(actx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return heads, err
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return nil, err
		}
	}
}

// rebuilding counts and logs this replica taking part in rebuilding f in
// generation gen.
func (g *generations) rebuilding(f *followed, gen string) {
	g.rebuilds.Add(1)
	g.rebuildsTotal.WithLabelValues(f.name).Inc()
	g.log.Warn("projection store lost its data (generation record gone): rebuilding it from the stream; reads answered from MongoDB meanwhile",
		"projection", f.name, "generation", gen)
}

// dropAfter is how long after a rebuilt generation is ready the one it
// replaced is removed: every replica has followed the record by then, and
// finished the batch in hand.
const dropAfter = 5 * time.Second

// caughtUp reports whether the rebuilt generation of f reached its target
// on every partition. The replica that then records it ready (a
// compare-and-set: a replay may be changing the record) removes, a little
// later, the generation it replaced.
func (g *generations) caughtUp(ctx context.Context, f *followed, rec generation.Record) (bool, error) {
	p, err := f.open(rec.Live)
	if err != nil {
		return false, err
	}
	for part, target := range rec.Target {
		c, err := p.Checkpoint(ctx, part)
		if err != nil {
			return false, fmt.Errorf("checkpoint of partition %d in generation %q: %w", part, rec.Live, err)
		}
		if c < target {
			return false, nil
		}
	}
	next := rec
	next.Ready, next.Target, next.Previous = true, nil, generation.Original
	ok, err := f.store.Update(ctx, f.name, rec, next)
	if err != nil || !ok {
		return false, err // changed meanwhile: judged again at the next step
	}
	g.log.Info("rebuilt generation caught up; reads served from it again", "projection", f.name, "generation", rec.Live)
	if prev := rec.Previous; prev != rec.Live {
		go func() {
			select {
			case <-time.After(dropAfter):
			case <-g.ctx.Done():
				return
			}
			if err := f.store.Drop(g.ctx, f.name, prev); err != nil {
				g.log.Warn("replaced generation not removed", "projection", f.name, "generation", prev, "err", err)
			}
		}()
	}
	return true, nil
}

// liveStores answers reads from the live generations: the apps and daily
// stats stores, and the Redis store, or MongoDB while the Redis projection
// is being rebuilt (unique devices are then unknown, -1).
type liveStores struct {
	apps, stats atomic.Pointer[mongo.Store]
	hot         atomic.Pointer[hotView]
}

// hotView is the Redis store readers use, and whether it is complete.
type hotView struct {
	store *redis.Store
	ready bool
}

// App implements handlers.AppReader and httpapi.Docs.
func (l *liveStores) App(ctx context.Context, id string) (projections.App, bool, error) {
	return l.apps.Load().App(ctx, id)
}

// DailyLaunches implements httpapi.Docs.
func (l *liveStores) DailyLaunches(ctx context.Context, appID, day string) (int64, error) {
	return l.stats.Load().DailyLaunches(ctx, appID, day)
}

// Release implements httpapi.Hot. While Redis is rebuilt, the position
// is that of the app's last event, not of its release.
func (l *liveStores) Release(ctx context.Context, appID string) (string, uint64, bool, error) {
	if h := l.hot.Load(); h.ready {
		return h.store.Release(ctx, appID)
	}
	a, found, err := l.App(ctx, appID)
	if err != nil || !found {
		return "", 0, false, err
	}
	return a.Release, uint64(max(a.Position, 0)), true, nil
}

// Launches implements httpapi.Hot.
func (l *liveStores) Launches(ctx context.Context, appID, day string) (int64, int64, error) {
	if h := l.hot.Load(); h.ready {
		return h.store.Launches(ctx, appID, day)
	}
	n, err := l.DailyLaunches(ctx, appID, day)
	return n, -1, err
}

// Top implements httpapi.Hot.
func (l *liveStores) Top(ctx context.Context, day string, n int) ([]projections.AppCount, error) {
	if h := l.hot.Load(); h.ready {
		return h.store.Top(ctx, day, n)
	}
	return l.stats.Load().TopDaily(ctx, day, n)
}
