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
// settled waits until r has applied everything, then checks every app.
func (w *drillWorkload) settled(t *testing.T, r *replica) {
	t.Helper()
	r.caughtUp()
	if err := w.check(r); err != nil {
		t.Fatal(err)
	}
}

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
func drillProjection(t testing.TB, st platform.Status, name string) platform.ProjectionStatus {
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

// replay runs platform.Replay against the stand's stores and r's stream,
// with the drill grace unless opts sets one, and batches of maxBatch
// events (0: the replicas' setting). Its log goes to logs (if set) and,
// with EVFLOW_TEST_LOG, to stderr.
func (s *stand) runReplay(ctx context.Context, r *replica, opts platform.ReplayOptions, maxBatch int, logs *testenv.Buffer) ([]replay.Plan, []replay.Summary, error) {
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
// generation records and the Kafka bus's keys (fence, deduplication) are
// left out, keys of no generation are under "?".
func redisState(t *testing.T, s *stand) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for k, v := range testenv.DumpRedis(t, s.redis.Addr) {
		if strings.HasPrefix(k, "evflow:generation:") || strings.HasPrefix(k, "evflow:fence:") || strings.HasPrefix(k, "evflow:published:") {
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
		want := foldStream(t, r, id)
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
