package platform_test

// Recovery drills: an operator loses or damages a projection store while
// the replicas run, and rebuilds it from the stream (platform.Replay), or
// the replicas rebuild it by themselves (Redis restarted without
// persistence). Each drill sends a realistic drillWorkload through the HTTP
// API, tallies what the read model must hold independently of it, and
// checks that the store ends exactly as it was before the damage.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/infra/platform"
	"github.com/evflow/evflow/infra/replay"
	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

// drillDays are the days the workload's launches fall on.
var drillDays = []string{day, "2026-11-21"}

// drillGrace is the replays' grace: longer than the replicas' 1s poll of
// the generation records.
const drillGrace = 1500 * time.Millisecond

// drillWorkload sends a realistic mix through the HTTP API (apps through their
// lifecycle, launches over several devices and two days) and keeps its
// own tally of what the read model must hold.
type drillWorkload struct {
	apps    []string
	release map[string]string                     // app → current release
	counts  map[string]map[string]int64           // app → day → launches
	devices map[string]map[string]map[string]bool // app → day → devices
	next    int                                   // number of the next launch id
	mu      sync.Mutex
}

func newDrillWorkload(n int) *drillWorkload {
	w := &drillWorkload{release: map[string]string{}, counts: map[string]map[string]int64{}, devices: map[string]map[string]map[string]bool{}}
	for i := range n {
		id := fmt.Sprintf("app%02d", i)
		w.apps = append(w.apps, id)
		w.counts[id] = map[string]int64{}
		w.devices[id] = map[string]map[string]bool{}
	}
	return w
}

// lifecycle runs round 0 (create, a first release, grants, a rejected
// version) or round 1 (a second release, rollbacks, grants and revokes)
// on every app, apps in parallel, each app's commands in order.
func (w *drillWorkload) lifecycle(t *testing.T, r *replica, round int) {
	t.Helper()
	errs := make(chan error, len(w.apps))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, id := range w.apps {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var cmds []map[string]any
			release := ""
			switch round {
			case 0:
				cmds = append(cmds,
					cmd("app.create", id, "name", "App "+id),
					cmd("app.submit_version", id, "version", "1.0.0", "notes", "first"),
					cmd("app.approve_version", id, "version", "1.0.0"),
					cmd("app.publish_release", id, "version", "1.0.0"))
				release = "1.0.0"
				if i%4 == 0 {
					cmds = append(cmds, cmd("app.grant", id, "org", "org2"))
				}
				if i%5 == 0 {
					cmds = append(cmds,
						cmd("app.submit_version", id, "version", "1.0.1"),
						cmd("app.reject_version", id, "version", "1.0.1", "reason", "crashes on start"))
				}
			case 1:
				cmds = append(cmds,
					cmd("app.submit_version", id, "version", "1.1.0"),
					cmd("app.approve_version", id, "version", "1.1.0"),
					cmd("app.publish_release", id, "version", "1.1.0"))
				release = "1.1.0"
				if i%3 == 0 {
					cmds = append(cmds, cmd("app.rollback_release", id))
					release = "1.0.0"
				}
				if i%4 == 0 {
					cmds = append(cmds, cmd("app.grant", id, "org", "org3"))
				}
				if i%8 == 0 {
					cmds = append(cmds, cmd("app.revoke", id, "org", "org2"))
				}
			}
			for _, c := range cmds {
				if err := r.tryCommand(c); err != nil {
					errs <- err
					return
				}
			}
			w.mu.Lock()
			w.release[id] = release
			w.mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// launch sends n launches, skewed towards the first apps, over 13 devices
// and both drill days, in batches of 500.
func (w *drillWorkload) launch(t *testing.T, r *replica, n int) {
	t.Helper()
	var batch []map[string]any
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if code := r.call("POST", "/v1/launches", map[string]any{"launches": batch}, nil); code != http.StatusAccepted {
			t.Fatalf("launches: %d", code)
		}
		batch = nil
	}
	for range n {
		j := w.next
		w.next++
		app := w.apps[j%len(w.apps)]
		if j%3 == 0 {
			app = w.apps[(j/3)%min(4, len(w.apps))]
		}
		d := drillDays[(j/2)%len(drillDays)]
		dev := fmt.Sprintf("dev%d", (j*7)%13)
		batch = append(batch, map[string]any{"id": fmt.Sprintf("w%d", j), "app_id": app, "version": "1.0.0", "device_id": dev,
			"org": "org1", "at": fmt.Sprintf("%sT%02d:%02d:00Z", d, j%24, j%60)})
		w.counts[app][d]++
		if w.devices[app][d] == nil {
			w.devices[app][d] = map[string]bool{}
		}
		w.devices[app][d][dev] = true
		if len(batch) == 500 {
			flush()
		}
	}
	flush()
}

// check reads every app's release and stats through the API and compares
// them with the tally. Unique devices may be unknown (-1) while Redis is
// being rebuilt; release and launch counts never.
func (w *drillWorkload) check(r *replica) error {
	for _, id := range w.apps {
		if err := w.checkApp(r, id); err != nil {
			return err
		}
	}
	return nil
}

func (w *drillWorkload) checkApp(r *replica, id string) error {
	var rel httpapi.Release
	if code, err := r.getJSON("/v1/apps/"+id+"/release", &rel); err != nil || code != http.StatusOK || rel.Version != w.release[id] {
		return fmt.Errorf("release of %s: %d %+v (%v), want %q", id, code, rel, err, w.release[id])
	}
	for _, d := range drillDays {
		var st httpapi.Stats
		code, err := r.getJSON("/v1/apps/"+id+"/stats?day="+d, &st)
		want, uniq := w.counts[id][d], int64(len(w.devices[id][d]))
		if err != nil || code != http.StatusOK || st.Launches != want || st.StoredLaunches != want || (st.UniqueDevices != uniq && st.UniqueDevices != -1) {
			return fmt.Errorf("stats of %s on %s: %d %+v (%v), want %d launches from %d devices", id, d, code, st, err, want, uniq)
		}
	}
	return nil
}

// try sends a command, retrying while the replica answers 503; unlike
// command it may run outside the test's goroutine.
func (r *replica) tryCommand(c map[string]any) error {
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		resp, err := http.Post(r.base+"/v1/commands", "application/json", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("command %v: %w", c, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode == http.StatusServiceUnavailable && attempt < 20:
			time.Sleep(50 * time.Millisecond)
			continue
		}
		return fmt.Errorf("command %v: %d %s", c, resp.StatusCode, raw)
	}
}

// get is a GET that reports failures instead of failing the test; it may
// run outside the test's goroutine.
func (r *replica) getJSON(path string, out any) (int, error) {
	resp, err := http.Get(r.base + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %q: %w", raw, err)
		}
	}
	return resp.StatusCode, nil
}

// projection returns the status of the named projection.
func drillProjection(t *testing.T, st platform.Status, name string) platform.ProjectionStatus {
	t.Helper()
	for _, p := range st.Projections {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("status has no projection %s: %+v", name, st.Projections)
	return platform.ProjectionStatus{}
}

// following waits until the replica applies generation gen of projection
// and it is complete.
func (r *replica) waitGeneration(name, gen string) {
	r.t.Helper()
	testenv.WaitFor(r.t, 10*time.Second, func() error {
		p := drillProjection(r.t, r.status(), name)
		if p.Generation != gen || p.Rebuilding {
			return fmt.Errorf("%s: generation %q (rebuilding %v), want %q complete", name, p.Generation, p.Rebuilding, gen)
		}
		return nil
	})
}

// drillLog collects a replay's log lines.
type drillLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *drillLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *drillLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// replay runs platform.Replay against the stand's stores and r's stream,
// with the drill grace unless opts sets one, and batches of maxBatch
// events (0: the replicas' setting). Its log goes to logs (if set) and,
// with EVFLOW_TEST_LOG, to stderr.
func (s *stand) runReplay(ctx context.Context, r *replica, opts platform.ReplayOptions, maxBatch int, logs *drillLog) ([]replay.Plan, []replay.Summary, error) {
	cfg := s.cfg
	cfg.NATSURL, cfg.MongoURI, cfg.RedisAddr = r.r.NATSURL, s.mongo.URI(), s.redis.Addr
	if opts.Grace == 0 {
		opts.Grace = drillGrace
	}
	if maxBatch > 0 {
		cfg.MaxBatch = maxBatch
	}
	var out io.Writer = io.Discard
	if logs != nil {
		out = logs
	}
	if os.Getenv("EVFLOW_TEST_LOG") != "" {
		out = io.MultiWriter(out, os.Stderr)
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return platform.Replay(ctx, cfg, logger, opts)
}

// mustReplay is replay that fails the test on error, bounded by 30s.
func (s *stand) mustReplay(t *testing.T, r *replica, opts platform.ReplayOptions) ([]replay.Plan, []replay.Summary) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plans, sums, err := s.runReplay(ctx, r, opts, 0, nil)
	if err != nil {
		t.Fatalf("replay %v: %v", opts.Projections, err)
	}
	if len(sums) != len(opts.Projections) {
		t.Fatalf("replay %v: %d summaries", opts.Projections, len(sums))
	}
	return plans, sums
}

// mongoDB connects to the stand's MongoDB database.
func drillMongo(t *testing.T, s *stand) *mongo.Database {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(s.mongo.URI()))
	if err != nil {
		t.Fatalf("mongo: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(s.cfg.MongoDB)
}

func drillCollections(t *testing.T, db *mongo.Database) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatalf("list collections: %v", err)
	}
	slices.Sort(names)
	return names
}

// genSuffix is a generation's collection name suffix.
var genSuffix = regexp.MustCompile(`_g[0-9a-z]{1,13}$`)

// mongoState is DumpMongo with the generation suffixes taken off the
// collection names, without the generation records: the content of the
// live generations, comparable across replays. Two generations holding the
// same document (an old one left behind) fail the test.
func mongoState(t *testing.T, s *stand) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range testenv.DumpMongo(t, s.mongo.URI(), s.cfg.MongoDB) {
		coll, id, _ := strings.Cut(k, "/")
		base := genSuffix.ReplaceAllString(coll, "")
		if base == "generations" {
			continue
		}
		nk := base + "/" + id
		if _, dup := out[nk]; dup {
			t.Fatalf("mongo: two generations hold %s (an old generation left behind)", nk)
		}
		out[nk] = v
	}
	return out
}

// genPrefix is the part of a Redis key that names its generation.
var genPrefix = regexp.MustCompile(`^ev(_g[0-9a-z]{1,13})?:`)

// redisState is DumpRedis split by generation, each generation's keys
// rewritten to the original prefix "ev:", so that generations compare;
// generation records are left out, keys of no generation are under "?".
func redisState(t *testing.T, s *stand) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for k, v := range testenv.DumpRedis(t, s.redis.Addr) {
		if strings.HasPrefix(k, "evflow:generation:") {
			continue
		}
		gen, nk := "?", k
		if m := genPrefix.FindStringSubmatch(k); m != nil {
			gen, nk = m[1], "ev:"+k[len(m[0]):]
		}
		if out[gen] == nil {
			out[gen] = map[string]string{}
		}
		out[gen][nk] = v
	}
	return out
}

// onlyGeneration returns the content of the one generation in state, and
// fails the test if there is not exactly gen.
func onlyGeneration(t *testing.T, state map[string]map[string]string, gen string) map[string]string {
	t.Helper()
	var gens []string
	for g, keys := range state {
		gens = append(gens, fmt.Sprintf("%q (%d keys)", g, len(keys)))
	}
	slices.Sort(gens)
	if len(state) != 1 || state[gen] == nil {
		t.Fatalf("redis holds generations %v, want %q only", gens, gen)
	}
	return state[gen]
}

// redisClient connects to the stand's Redis.
func drillRedis(t *testing.T, s *stand) rueidis.Client {
	t.Helper()
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.redis.Addr}, DisableCache: true})
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(rc.Close)
	return rc
}

// checkpointsHash is the DumpRedis rendering of a checkpoint hash at heads.
func checkpointsHash(heads []uint64) string {
	var b strings.Builder
	b.WriteString("hash:")
	parts := make([]string, 0, len(heads))
	for p := range heads {
		if heads[p] > 0 {
			parts = append(parts, strconv.Itoa(p))
		}
	}
	slices.Sort(parts)
	for _, p := range parts {
		i, _ := strconv.Atoi(p)
		fmt.Fprintf(&b, "%s=%d;", p, heads[i])
	}
	return b.String()
}

// appBodies returns GET /v1/apps/{id} of every app, as answered.
func appBodies(t *testing.T, r *replica, ids []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range ids {
		resp, err := http.Get(r.base + "/v1/apps/" + id)
		if err != nil {
			t.Fatalf("GET app %s: %v", id, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out[id] = fmt.Sprintf("%d %s", resp.StatusCode, raw)
	}
	return out
}

// checkAppsFold compares every app document with the fold of its events read
// straight from the stream: an expectation independent of the projection.
func checkAppsFold(t *testing.T, r *replica, w *drillWorkload) {
	t.Helper()
	for _, id := range w.apps {
		want := foldStream(t, r.r.NATSURL, id)
		if want.Release != w.release[id] {
			t.Fatalf("fold of %s's stream: release %q, the workload published %q", id, want.Release, w.release[id])
		}
		var got projections.App
		if code, err := r.getJSON("/v1/apps/"+id, &got); err != nil || code != http.StatusOK {
			t.Fatalf("GET app %s: %d %v", id, code, err)
		}
		if want.Grants == nil {
			want.Grants = []string{}
		}
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		if string(gotJSON) != string(wantJSON) {
			t.Fatalf("app %s\n%s\nwant the fold of its stream\n%s", id, gotJSON, wantJSON)
		}
	}
}

func TestDrillDropMongoAppsThenReplay(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(20)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 300)
	w.lifecycle(t, r, 1)
	w.launch(t, r, 200)
	r.caughtUp()
	checkAppsFold(t, r, w)
	before := mongoState(t, s)
	beforeAPI := appBodies(t, r, w.apps)
	st := r.status()

	// The drill: the apps collection is lost.
	db := drillMongo(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.Collection("apps").Drop(ctx); err != nil {
		t.Fatalf("drop apps: %v", err)
	}
	if code, _ := r.getJSON("/v1/apps/app00", nil); code != http.StatusNotFound {
		t.Fatalf("GET app00 after the drop: %d, want 404", code)
	}

	plans, sums := s.mustReplay(t, r, platform.ReplayOptions{Projections: []string{"apps"}})
	if p := plans[0]; p.Live != "" || p.Resume || p.Seed || p.Pending != st.StreamMessages {
		t.Fatalf("plan %+v: want a new generation beside the original, from the beginning, %d events", p, st.StreamMessages)
	}
	gen := sums[0].Generation
	if gen == "" || sums[0].Previous != "" || sums[0].Events != st.StreamMessages {
		t.Fatalf("summary %+v: want a new generation replacing the original after %d events", sums[0], st.StreamMessages)
	}
	r.waitGeneration("apps", gen)

	if d := testenv.DiffDumps(before, mongoState(t, s)); d != "" {
		t.Fatalf("mongo after the replay differs from before the drop:\n%s", d)
	}
	names := drillCollections(t, db)
	if slices.Contains(names, "apps") || !slices.Contains(names, "apps"+gen) {
		t.Fatalf("collections %v: want apps%s and no apps", names, gen)
	}
	var left []bson.Raw
	cur, err := db.Collection("checkpoints").Find(ctx, bson.D{{Key: "projection", Value: "apps"}})
	if err == nil {
		err = cur.All(ctx, &left)
	}
	if err != nil || len(left) != 0 {
		t.Fatalf("old generation's apps checkpoints: %d left (%v)", len(left), err)
	}
	if d := testenv.DiffDumps(beforeAPI, appBodies(t, r, w.apps)); d != "" {
		t.Fatalf("GET /v1/apps/{id} after the replay:\n%s", d)
	}

	// Live processing goes on in the new generation.
	r.command(cmd("app.submit_version", "app01", "version", "2.0.0"))
	appWhere(r, "app01", func(a projections.App) error {
		if a.Version("2.0.0") == nil {
			return errors.New("version 2.0.0 not projected")
		}
		return nil
	})
	r.caughtUp()
	if n, err := db.Collection("apps"+gen).CountDocuments(ctx, bson.D{{Key: "versions.version", Value: "2.0.0"}}); err != nil || n != 1 {
		t.Fatalf("apps%s holds %d apps with version 2.0.0 (%v), want 1", gen, n, err)
	}

	// A restarted replica opens the new generation and reapplies nothing.
	r.stop()
	r = s.start(t)
	r.caughtUp()
	if p := drillProjection(t, r.status(), "apps"); p.Generation != gen || p.Applied != 0 {
		t.Fatalf("apps after a restart: generation %q, %d events applied; want %q and none", p.Generation, p.Applied, gen)
	}
	checkAppsFold(t, r, w)
}

func TestDrillFlushRedisThenReplay(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(20)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 300)
	w.lifecycle(t, r, 1)
	w.launch(t, r, 200)
	r.caughtUp()
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
	before := onlyGeneration(t, redisState(t, s), "")

	rc := drillRedis(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rc.Do(ctx, rc.B().Flushall().Build()).Error(); err != nil {
		t.Fatalf("flushall: %v", err)
	}

	// While the replay runs, reads are sampled: reported, not checked
	// (see TestDrillInterruptedRedisReplayAfterDataLossStillRecovers).
	var reads, wrong int
	_, sums := s.mustReplay(t, r, platform.ReplayOptions{Projections: []string{"redis"}, ProgressEvery: 50 * time.Millisecond,
		Progress: func(p replay.Progress) {
			if p.Done < p.Total {
				reads++
				if w.checkApp(r, w.apps[reads%len(w.apps)]) != nil {
					wrong++
				}
			}
		}})
	gen := sums[0].Generation
	if gen == "" {
		t.Fatalf("summary %+v: want a new generation", sums[0])
	}
	r.waitGeneration("redis", gen)
	st := r.status()
	t.Logf("replayed %d events into %s in %s; %d of %d reads wrong during the replay; %d rebuilds by the replica itself",
		sums[0].Events, gen, sums[0].Duration.Round(time.Millisecond), wrong, reads, st.Rebuilds)

	after := onlyGeneration(t, redisState(t, s), gen)
	if d := testenv.DiffDumps(before, after); d != "" {
		t.Fatalf("redis after the replay differs from before the flush:\n%s", d)
	}
	if got, want := after["ev:ckpt:redis"], checkpointsHash(st.Heads); got != want {
		t.Fatalf("checkpoints of %s: %s, want the heads %s", gen, got, want)
	}
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
}

func TestDrillRestoreOlderMongoSnapshotThenReplayFromItsPosition(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(20)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 300)
	r.caughtUp()

	// The backup. It holds, on every partition, every event up to that
	// partition's checkpoint; positions are stream-wide and partitions
	// advance independently, so the latest position a replay may start
	// from without missing an event on any partition is the lowest
	// checkpoint + 1. (The stream's last position + 1 is only right when,
	// as here, nothing was in flight; a lagging partition would lose
	// events.) Checkpoints are read first: documents copied after them
	// can only be newer.
	db := drillMongo(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	colls := []string{"checkpoints", "apps", "daily_stats"}
	snapshot := map[string][]bson.Raw{}
	for _, c := range colls {
		cur, err := db.Collection(c).Find(ctx, bson.D{})
		if err != nil {
			t.Fatalf("snapshot %s: %v", c, err)
		}
		var docs []bson.Raw
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatalf("snapshot %s: %v", c, err)
		}
		snapshot[c] = docs
	}
	from := uint64(0)
	for _, name := range []string{"apps", "daily_stats"} {
		for p := range s.cfg.Partitions {
			var pos int64
			for _, d := range snapshot["checkpoints"] {
				if d.Lookup("_id").StringValue() == fmt.Sprintf("%s:%d", name, p) {
					pos = d.Lookup("pos").AsInt64()
				}
			}
			if from == 0 || uint64(pos)+1 < from {
				from = uint64(pos) + 1
			}
		}
	}
	snapStatus := r.status()
	if from <= 1 || from > snapStatus.StreamLast {
		t.Fatalf("snapshot position %d, stream at %d: the drill needs a position inside the stream", from, snapStatus.StreamLast)
	}

	w.lifecycle(t, r, 1)
	w.launch(t, r, 300)
	r.caughtUp()
	checkAppsFold(t, r, w)
	before := mongoState(t, s)
	st := r.status()

	// The drill: the database is restored from the older backup.
	for _, c := range colls {
		if _, err := db.Collection(c).DeleteMany(ctx, bson.D{}); err != nil {
			t.Fatalf("restore %s: %v", c, err)
		}
		if _, err := db.Collection(c).InsertMany(ctx, snapshot[c]); err != nil {
			t.Fatalf("restore %s: %v", c, err)
		}
	}
	var a projections.App
	if code, err := r.getJSON("/v1/apps/app01", &a); err != nil || code != http.StatusOK || a.Release != "1.0.0" || a.Version("1.1.0") != nil {
		t.Fatalf("app01 after the restore: %d %+v (%v), want the backup's state", code, a, err)
	}

	plans, sums := s.mustReplay(t, r, platform.ReplayOptions{Projections: []string{"apps", "daily_stats"}, From: replay.From{Seq: from}})
	for i, p := range plans {
		if p.Live != "" || p.Resume || !p.Seed || p.From != strconv.FormatUint(from, 10) || p.Pending == 0 || p.Pending > st.StreamLast-from+1 {
			t.Fatalf("plan %d %+v: want a seeded new generation from %d", i, p, from)
		}
	}
	for _, sum := range sums {
		r.waitGeneration(sum.Projection, sum.Generation)
	}
	if sums[0].Generation == sums[1].Generation {
		t.Fatalf("apps and daily_stats replayed into one generation %s", sums[0].Generation)
	}
	if d := testenv.DiffDumps(before, mongoState(t, s)); d != "" {
		t.Fatalf("mongo after the restore and replay differs from before the restore:\n%s", d)
	}
	names := drillCollections(t, db)
	for _, c := range []string{"apps", "daily_stats"} {
		if slices.Contains(names, c) {
			t.Fatalf("collections %v: the original %s is still there", names, c)
		}
	}
	checkAppsFold(t, r, w)
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
	r.caughtUp()
}

func TestDrillRedisRestartWithoutPersistenceRebuildsByItself(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(20)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 2000)
	w.lifecycle(t, r, 1)
	w.launch(t, r, 2000)
	r.caughtUp()
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
	before := onlyGeneration(t, redisState(t, s), "")
	old := drillProjection(t, r.status(), "redis").Generation
	sample := []string{"app00", "app01", "app02", "app03", "app07"}

	restarted := time.Now()
	s.redis.Restart()

	// Until the replica notices (it reads the records every second) the
	// empty Redis answers; from then on every read must be right,
	// answered from MongoDB until the rebuild has caught up.
	var unnoticed, during, wrongUnnoticed int
	var noticedAfter time.Duration
	rebuilding := false
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no completed rebuild 20s after the restart (rebuilding seen: %v)", rebuilding)
		}
		st := r.status()
		p := drillProjection(t, st, "redis")
		if p.Rebuilding && !rebuilding {
			rebuilding, noticedAfter = true, time.Since(restarted)
		}
		if rebuilding && !p.Rebuilding {
			if st.Rebuilds < 1 || p.Generation == old {
				t.Fatalf("rebuild done: %d rebuilds, generation %q (was %q)", st.Rebuilds, p.Generation, old)
			}
			break
		}
		for _, id := range sample {
			err := w.checkApp(r, id)
			switch {
			case rebuilding && err != nil:
				t.Fatalf("read while Redis is rebuilt (%d reads after the rebuild started): %v", during, err)
			case rebuilding:
				during++
			default:
				unnoticed++
				if err != nil {
					wrongUnnoticed++
				}
			}
		}
	}
	if during == 0 {
		t.Fatalf("no read while the rebuild ran")
	}
	t.Logf("rebuild noticed %s after the restart; %d of %d reads wrong before that, %d right reads during the rebuild",
		noticedAfter.Round(time.Millisecond), wrongUnnoticed, unnoticed, during)

	gen := drillProjection(t, r.status(), "redis").Generation
	after := onlyGeneration(t, redisState(t, s), gen)
	if d := testenv.DiffDumps(before, after); d != "" {
		t.Fatalf("redis after the rebuild differs from before the restart:\n%s", d)
	}
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}

	// A restarted replica opens the rebuilt generation and reapplies nothing.
	r.stop()
	r = s.start(t)
	r.caughtUp()
	st := r.status()
	if p := drillProjection(t, st, "redis"); p.Generation != gen || p.Rebuilding || p.Applied != 0 || st.Rebuilds != 0 {
		t.Fatalf("redis after a restart: %+v, %d rebuilds; want generation %q complete, nothing applied", p, st.Rebuilds, gen)
	}
}

// TestDrillRedisLostWhileReplicaDownRebuildsAtStart: the whole host
// restarts; Redis comes back empty before the replica starts. The replica
// rebuilds it at start, answering from MongoDB meanwhile.
func TestDrillRedisLostWhileReplicaDownRebuildsAtStart(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(12)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 1500)
	r.caughtUp()
	before := onlyGeneration(t, redisState(t, s), "")
	r.stop()
	s.redis.Restart()

	r = s.start(t)
	if p := drillProjection(t, r.status(), "redis"); !p.Rebuilding || p.Generation == "" {
		t.Fatalf("redis at start after the data loss: %+v; want a new generation being rebuilt", p)
	}
	if err := w.check(r); err != nil {
		t.Fatalf("read while rebuilding: %v", err)
	}
	gen := r.waitRebuilt("")
	after := onlyGeneration(t, redisState(t, s), gen)
	if d := testenv.DiffDumps(before, after); d != "" {
		t.Fatalf("redis after the rebuild differs from before the data loss:\n%s", d)
	}
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
}

func TestReplayResumesAfterInterruption(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(8)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 2000)
	r.caughtUp()
	before := mongoState(t, s)
	total := r.status().StreamMessages
	const small = 8 // events per batch: a replay slow enough to interrupt

	// The first run is interrupted once some, not all, events are applied.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, interrupt := context.WithCancel(ctx)
	var doneAtCut uint64
	opts := platform.ReplayOptions{Projections: []string{"daily_stats"}, ProgressEvery: 5 * time.Millisecond,
		Progress: func(p replay.Progress) {
			if doneAtCut == 0 && p.Done > 0 && p.Done < p.Total {
				doneAtCut = p.Done
				interrupt()
			}
		}}
	_, _, err := s.runReplay(runCtx, r, opts, small, nil)
	interrupt()
	if err == nil || !errors.Is(err, context.Canceled) || doneAtCut == 0 {
		t.Fatalf("interrupted replay: %v after %d events: want it cancelled part way", err, doneAtCut)
	}
	db := drillMongo(t, s)
	var rec struct {
		Live, Building, From string
	}
	if err := db.Collection("generations").FindOne(ctx, bson.D{{Key: "_id", Value: "daily_stats"}}).Decode(&rec); err != nil {
		t.Fatalf("daily_stats record: %v", err)
	}
	if rec.Live != "" || rec.Building == "" || rec.From != "beginning" {
		t.Fatalf("record after the interruption %+v: want the original live and a generation being built", rec)
	}

	plans, _, err := s.runReplay(ctx, r, platform.ReplayOptions{Projections: []string{"daily_stats"}, DryRun: true}, small, nil)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if p := plans[0]; !p.Resume || p.Building != rec.Building || p.Pending == 0 || p.Pending >= total {
		t.Fatalf("plan %+v: want to resume %s with fewer than the %d events", p, rec.Building, total)
	}

	logs := &drillLog{}
	_, sums, err := s.runReplay(ctx, r, platform.ReplayOptions{Projections: []string{"daily_stats"}}, small, logs)
	if err != nil {
		t.Fatalf("resumed replay: %v", err)
	}
	if sum := sums[0]; sum.Generation != rec.Building || sum.Events == 0 || sum.Events >= total || sum.Events != plans[0].Pending {
		t.Fatalf("summary %+v: want %s resumed with the %d pending of %d events", sum, rec.Building, plans[0].Pending, total)
	}
	if !strings.Contains(logs.String(), "resuming an interrupted rebuild") {
		t.Fatalf("the replay did not log resuming:\n%s", logs)
	}
	t.Logf("interrupted after %d events; resumed %s with %d of %d", doneAtCut, rec.Building, sums[0].Events, total)
	r.waitGeneration("daily_stats", rec.Building)
	if d := testenv.DiffDumps(before, mongoState(t, s)); d != "" {
		t.Fatalf("mongo after the resumed replay differs from before:\n%s", d)
	}
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
}

// drillReaders read the sample apps' releases through the API from a few
// goroutines until stopped, and keep the wrong answers.
type drillReaders struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	reads int
	wrong []string
}

func startDrillReaders(r *replica, w *drillWorkload, sample []string) *drillReaders {
	rd := &drillReaders{stop: make(chan struct{})}
	began := time.Now()
	for g := range 4 {
		rd.wg.Go(func() {
			for i := g; ; i++ {
				select {
				case <-rd.stop:
					return
				default:
				}
				id := sample[i%len(sample)]
				var rel httpapi.Release
				code, err := r.getJSON("/v1/apps/"+id+"/release", &rel)
				if err == nil && (code != http.StatusOK || rel.Version != w.release[id]) {
					err = fmt.Errorf("release of %s: %d %q, want %q", id, code, rel.Version, w.release[id])
				}
				rd.mu.Lock()
				rd.reads++
				if err != nil {
					rd.wrong = append(rd.wrong, fmt.Sprintf("+%s %v", time.Since(began).Round(time.Millisecond), err))
				}
				rd.mu.Unlock()
			}
		})
	}
	return rd
}

// done stops the drillReaders and returns the reads done and the wrong ones.
func (rd *drillReaders) done() (int, []string) {
	close(rd.stop)
	rd.wg.Wait()
	return rd.reads, rd.wrong
}

// waitRebuilt waits until the replica has rebuilt the Redis projection
// by itself: a new generation, complete, caught up with the heads.
func (r *replica) waitRebuilt(old string) string {
	r.t.Helper()
	var gen string
	testenv.WaitFor(r.t, 20*time.Second, func() error {
		st := r.status()
		p := drillProjection(r.t, st, "redis")
		if p.Rebuilding || p.Generation == old || st.Rebuilds < 1 || slices.ContainsFunc(p.Lag, func(l uint64) bool { return l > 0 }) {
			return fmt.Errorf("redis: generation %q, rebuilding %v, lag %v, %d rebuilds", p.Generation, p.Rebuilding, p.Lag, st.Rebuilds)
		}
		gen = p.Generation
		return nil
	})
	return gen
}

// TestDrillRedisRecordLostReadsNeverSeeTheEmptyGeneration: the Redis
// record alone is lost (evicted, deleted), the data is intact. The
// replicas then rebuild in a new generation, answering from MongoDB
// meanwhile; no read may be answered from the new, empty generation.
func TestDrillRedisRecordLostReadsNeverSeeTheEmptyGeneration(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(12)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 600)
	r.caughtUp()
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
	before := onlyGeneration(t, redisState(t, s), "")
	rd := startDrillReaders(r, w, w.apps)
	time.Sleep(100 * time.Millisecond)
	rc := drillRedis(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rc.Do(ctx, rc.B().Del().Key("evflow:generation:redis").Build()).Error(); err != nil {
		t.Fatalf("del record: %v", err)
	}
	gen := r.waitRebuilt("")
	reads, wrong := rd.done()
	if len(wrong) > 0 {
		t.Errorf("%d of %d reads wrong while the replica switched to the rebuilt generation %s, first: %v",
			len(wrong), reads, gen, wrong[:min(3, len(wrong))])
	}
	state := oldGenerationRemoved(t, s)
	if len(state) != 1 {
		t.Errorf("redis holds %d generations after the rebuild, want only %q: the generation applied before (%d keys of %q) was not removed",
			len(state), gen, len(state[""]), "")
	}
	if d := testenv.DiffDumps(before, state[gen]); d != "" {
		t.Errorf("rebuilt generation differs from the one it replaced:\n%s", d)
	}
}

// TestDrillRedisRestartUnderTrafficLeavesNoOldGeneration: Redis restarts
// without persistence while launches flow. Until a replica notices, its
// runner writes the new launches into the old generation's key space of
// the empty Redis; the rebuilt generation must hold everything, and the
// old generation must not linger.
func TestDrillRedisRestartUnderTrafficLeavesNoOldGeneration(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(12)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 600)
	r.caughtUp()
	w.launch(t, r, 60)
	// Restart just after the replica read the records: it notices about a
	// second later, while launches go on.
	rc := drillRedis(t, s)
	calls := hgetallCalls(t, rc)
	testenv.WaitEvery(t, 3*time.Second, time.Millisecond, func() error {
		if hgetallCalls(t, rc) == calls {
			return errors.New("the replica has not read the records")
		}
		return nil
	})
	s.redis.Restart()
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		w.launch(t, r, 20)
	}
	gen := r.waitRebuilt("")
	r.caughtUp()
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
	state := oldGenerationRemoved(t, s)
	if old := state[""]; len(state) != 1 || old != nil {
		var sample []string
		for k, v := range old {
			if len(sample) < 3 {
				sample = append(sample, k+" = "+v)
			}
		}
		slices.Sort(sample)
		t.Fatalf("after the rebuild into %s, the old generation still holds %d keys, e.g. %v", gen, len(old), sample)
	}
}

// hgetallCalls is how many HGETALLs the Redis server has run: the
// replicas' reads of the generation record, nothing else of evflow.
func hgetallCalls(t *testing.T, rc rueidis.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := rc.Do(ctx, rc.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatalf("info commandstats: %v", err)
	}
	m := regexp.MustCompile(`cmdstat_hgetall:calls=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// TestDrillInterruptedRedisReplayAfterDataLossStillRecovers: Redis lost
// its data and an operator starts a replay of it at once, before a
// replica noticed; the replay is interrupted. The hot path must still
// recover (the replicas rebuild it and answer from MongoDB meanwhile);
// running the replay again finishes it.
func TestDrillInterruptedRedisReplayAfterDataLossStillRecovers(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(12)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 1000)
	r.caughtUp()
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
	before := onlyGeneration(t, redisState(t, s), "")

	// Lose the data just after the replica read the records, so that the
	// replay, not the replica, is the first to find the record missing.
	rc := drillRedis(t, s)
	calls := hgetallCalls(t, rc)
	testenv.WaitEvery(t, 3*time.Second, time.Millisecond, func() error {
		if hgetallCalls(t, rc) == calls {
			return errors.New("the replica has not read the records")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rc.Do(ctx, rc.B().Flushall().Build()).Error(); err != nil {
		t.Fatalf("flushall: %v", err)
	}
	runCtx, interrupt := context.WithCancel(ctx)
	opts := platform.ReplayOptions{Projections: []string{"redis"}, ProgressEvery: 5 * time.Millisecond,
		Progress: func(replay.Progress) { interrupt() }}
	if _, _, err := s.runReplay(runCtx, r, opts, 8, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted replay: %v, want cancelled", err)
	}
	interrupt()

	// The replicas had 5 polls to notice the lost data.
	var last error
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if last = w.check(r); last == nil {
			break
		}
	}
	if last != nil {
		st := r.status()
		rec, _ := rc.Do(ctx, rc.B().Hgetall().Key("evflow:generation:redis").Build()).AsStrMap()
		t.Errorf("5s after the interrupted replay the hot path still answers wrong: %v\n"+
			"redis projection %+v, %d rebuilds; record %v", last, drillProjection(t, st, "redis"), st.Rebuilds, rec)
	}

	// Running the replay again resumes and finishes it.
	_, sums := s.mustReplay(t, r, platform.ReplayOptions{Projections: []string{"redis"}})
	r.waitGeneration("redis", sums[0].Generation)
	after := onlyGeneration(t, redisState(t, s), sums[0].Generation)
	if d := testenv.DiffDumps(before, after); d != "" {
		t.Fatalf("redis after the resumed replay differs from before the flush:\n%s", d)
	}
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
}

// TestDrillReplayUnderTrafficLosesNothing: apps and the Redis projection
// are replayed from the beginning while commands and launches flow; the
// swapped-in generations hold every event, before and after the swap.
func TestDrillReplayUnderTrafficLosesNothing(t *testing.T) {
	s := newStand(t)
	r := s.start(t)
	w := newDrillWorkload(12)
	w.lifecycle(t, r, 0)
	w.launch(t, r, 600)
	r.caughtUp()

	type result struct {
		sums []replay.Summary
		err  error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		_, sums, err := s.runReplay(ctx, r, platform.ReplayOptions{Projections: []string{"apps", "redis"}}, 0, nil)
		done <- result{sums, err}
	}()
	var res result
	rounds := 0
traffic:
	for {
		select {
		case res = <-done:
			break traffic
		default:
		}
		if rounds == 3 {
			w.lifecycle(t, r, 1) // commands decided against the apps while they are replayed
		}
		w.launch(t, r, 30)
		rounds++
		time.Sleep(20 * time.Millisecond)
	}
	if res.err != nil {
		t.Fatalf("replay: %v", res.err)
	}
	w.launch(t, r, 30) // after the swap
	if rounds < 10 {
		t.Fatalf("only %d rounds of traffic during the replay", rounds)
	}
	for _, sum := range res.sums {
		r.waitGeneration(sum.Projection, sum.Generation)
	}
	r.caughtUp()
	checkAppsFold(t, r, w)
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
	mongoState(t, s) // no old generation left behind
	onlyGeneration(t, redisState(t, s), res.sums[1].Generation)
	t.Logf("%d rounds of traffic during the replay; replayed %d and %d events", rounds, res.sums[0].Events, res.sums[1].Events)
}

// oldGenerationRemoved waits until Redis holds one generation (the
// replicas remove the one a rebuild replaced a few seconds after the
// rebuild is complete), and returns Redis's state then, or after 15s.
func oldGenerationRemoved(t *testing.T, s *stand) map[string]map[string]string {
	t.Helper()
	var state map[string]map[string]string
	deadline := time.Now().Add(15 * time.Second)
	for {
		state = redisState(t, s)
		if len(state) == 1 || time.Now().After(deadline) {
			return state
		}
		time.Sleep(100 * time.Millisecond)
	}
}
