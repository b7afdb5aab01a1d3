package projections

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
)

// memDocs is an in-memory [DocStore] with the semantics of the real one
// (infra/mongo): SaveApps writes an app only if its stored position is
// still the write's Prev, daily counters count only positions above the
// one they hold, checkpoints never move backwards, and loaded apps share
// nothing with the stored ones (as documents decoded from the wire). It
// records calls and lets a test play a rival writer, to test the
// projection's orchestration only; the real store is tested in infra/mongo.
type memDocs struct {
	mu       sync.Mutex
	apps     map[string]App
	counters map[string]*heldCounter // by app:day
	cps      map[string]uint64       // by projection:partition
	calls    []string                // "load", "save", "daily", "checkpoint"
	loads    [][]string
	saves    [][]AppWrite
	// rival, when set, runs inside the n-th SaveApps call (0-based) before
	// its writes, with the stored apps: it plays another writer.
	rival func(n int, apps map[string]App)
	// Errors to return. With failLate the call applies its writes first.
	loadErr, saveErr, dailyErr, cpErr error
	failLate                          bool
}

func newMemDocs() *memDocs {
	return &memDocs{apps: map[string]App{}, counters: map[string]*heldCounter{}, cps: map[string]uint64{}}
}

func cpKey(projection string, partition int) string {
	return fmt.Sprintf("%s:%d", projection, partition)
}

// countLaunches adds each group to its (app, day) counter, counting only
// the positions above the one the counter holds.
func countLaunches(counters map[string]*heldCounter, groups []LaunchGroup) {
	for _, g := range groups {
		k := g.AppID + ":" + g.Day
		c := counters[k]
		if c == nil {
			c = &heldCounter{devices: map[string]bool{}}
			counters[k] = c
		}
		held := c.pos
		for i, p := range g.Positions {
			if p > held {
				c.launches++
				c.devices[g.Devices[i]] = true
				c.pos = max(c.pos, p)
			}
		}
	}
}

func (s *memDocs) LoadApps(_ context.Context, ids []string) (map[string]App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "load")
	s.loads = append(s.loads, slices.Clone(ids))
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	out := map[string]App{}
	for _, id := range ids {
		if a, ok := s.apps[id]; ok {
			out[id] = cloneApp(a)
		}
	}
	return out, nil
}

func (s *memDocs) SaveApps(_ context.Context, writes []AppWrite) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "save")
	logged := make([]AppWrite, len(writes))
	for i, w := range writes {
		logged[i] = AppWrite{App: cloneApp(w.App), Prev: w.Prev}
	}
	s.saves = append(s.saves, logged)
	if s.saveErr != nil && !s.failLate {
		return nil, s.saveErr
	}
	if s.rival != nil {
		s.rival(len(s.saves)-1, s.apps)
	}
	var lost []string
	for _, w := range writes {
		if w.App.ID == "" {
			return nil, errors.New("write without an app id")
		}
		if s.apps[w.App.ID].Position != w.Prev { // absent: position 0
			lost = append(lost, w.App.ID)
			continue
		}
		s.apps[w.App.ID] = cloneApp(w.App)
	}
	if s.saveErr != nil {
		return nil, s.saveErr
	}
	return lost, nil
}

func (s *memDocs) AddDailyLaunches(_ context.Context, groups []LaunchGroup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "daily")
	if s.dailyErr != nil && !s.failLate {
		return s.dailyErr
	}
	countLaunches(s.counters, groups)
	return s.dailyErr
}

func (s *memDocs) Checkpoint(_ context.Context, projection string, partition int) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cps[cpKey(projection, partition)], nil
}

func (s *memDocs) SaveCheckpoint(_ context.Context, projection string, partition int, pos uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "checkpoint")
	if s.cpErr != nil {
		return s.cpErr
	}
	k := cpKey(projection, partition)
	s.cps[k] = max(s.cps[k], pos)
	return nil
}

var _ DocStore = (*memDocs)(nil)

// launches returns the count of app on day.
func (s *memDocs) launches(app, day string) int {
	if c := s.counters[app+":"+day]; c != nil {
		return c.launches
	}
	return 0
}

// savedIDs returns the ids written by the n-th SaveApps call.
func (s *memDocs) savedIDs(n int) []string {
	var ids []string
	for _, w := range s.saves[n] {
		ids = append(ids, w.App.ID)
	}
	return ids
}

// checkApps fails unless each stored app equals the fold of events.
func (s *memDocs) checkApps(t *testing.T, all []Event, ids ...string) {
	t.Helper()
	for _, id := range ids {
		want := foldAll(id, all)
		if got := s.apps[id]; !reflect.DeepEqual(got, want) {
			t.Errorf("stored %s:\n got %+v\nwant %+v", id, got, want)
		}
	}
}

var statDay = time.Date(2024, 3, 10, 9, 0, 0, 0, time.UTC)

// mongoBatch1 touches app-1 and app-2 and ends with a launch.
func mongoBatch1() []Event {
	return []Event{
		appEv(1, "app-1", &events.AppCreated{Name: "One"}),
		appEv(2, "app-2", &events.AppCreated{Name: "Two"}),
		appEv(3, "app-1", &events.VersionSubmitted{Version: "1.0"}),
		launchEv(4, "app-1", "dev-a", statDay),
		appEv(5, "app-1", &events.VersionApproved{Version: "1.0"}),
		appEv(6, "app-2", &events.AppGranted{Org: "org-b"}),
		appEv(7, "app-1", &events.ReleasePublished{Version: "1.0"}),
		launchEv(8, "app-1", "dev-b", statDay),
		launchEv(9, "app-2", "dev-a", statDay),
	}
}

// mongoBatch2 follows mongoBatch1 and changes app-1 only.
func mongoBatch2() []Event {
	return []Event{
		appEv(10, "app-1", &events.VersionSubmitted{Version: "1.1"}),
		appEv(11, "app-1", &events.AppGranted{Org: "org-c"}),
		launchEv(12, "app-2", "dev-c", statDay),
	}
}

func TestMongoApplyWritesEachChangedAppOnce(t *testing.T) {
	ctx := context.Background()
	s := newMemDocs()
	m := newMongoPair(s)
	if NewApps(s).Name() != "apps" || NewDailyStats(s).Name() != "daily_stats" {
		t.Fatalf("names %q, %q; the durable names must stay apps and daily_stats", NewApps(s).Name(), NewDailyStats(s).Name())
	}
	b1, b2 := mongoBatch1(), mongoBatch2()

	if err := m.Apply(ctx, 5, b1); err != nil {
		t.Fatalf("Apply(batch 1) = %v", err)
	}
	if want := []string{"load", "save", "checkpoint", "daily", "checkpoint"}; !slices.Equal(s.calls, want) {
		t.Fatalf("calls = %v, want %v", s.calls, want)
	}
	if want := [][]string{{"app-1", "app-2"}}; !reflect.DeepEqual(s.loads, want) {
		t.Errorf("loads = %v, want %v", s.loads, want)
	}
	wantWrites := []AppWrite{{App: foldAll("app-1", b1), Prev: 0}, {App: foldAll("app-2", b1), Prev: 0}}
	if !reflect.DeepEqual(s.saves[0], wantWrites) {
		t.Errorf("writes =\n %+v\nwant\n %+v", s.saves[0], wantWrites)
	}
	s.checkApps(t, b1, "app-1", "app-2")
	if s.apps["app-1"].Position != 7 || s.apps["app-2"].Position != 6 {
		t.Errorf("positions app-1 %d app-2 %d, want 7 and 6", s.apps["app-1"].Position, s.apps["app-2"].Position)
	}
	if a1, a2 := s.launches("app-1", "2024-03-10"), s.launches("app-2", "2024-03-10"); a1 != 2 || a2 != 1 {
		t.Errorf("launches app-1 %d app-2 %d, want 2 and 1", a1, a2)
	}
	if got, err := m.Checkpoint(ctx, 5); err != nil || got != 9 {
		t.Errorf("Checkpoint(5) = %d, %v; want 9", got, err)
	}

	// The next batch writes only app-1, conditional on the position stored.
	if err := m.Apply(ctx, 5, b2); err != nil {
		t.Fatalf("Apply(batch 2) = %v", err)
	}
	if want := []string{"app-1"}; !slices.Equal(s.loads[1], want) {
		t.Errorf("second load = %v, want %v", s.loads[1], want)
	}
	all := slices.Concat(b1, b2)
	wantWrites = []AppWrite{{App: foldAll("app-1", all), Prev: 7}}
	if len(s.saves) != 2 || !reflect.DeepEqual(s.saves[1], wantWrites) {
		t.Fatalf("second save = %+v, want %+v", s.saves[1:], wantWrites)
	}
	s.checkApps(t, all, "app-1", "app-2")
	if got, _ := m.Checkpoint(ctx, 5); got != 12 {
		t.Errorf("Checkpoint(5) = %d, want 12", got)
	}

	// Redelivery of either batch, or a prefix of one, writes nothing new.
	for i, b := range [][]Event{b1, b2, b1[:4], slices.Concat(b1, b2)} {
		if err := m.Apply(ctx, 5, b); err != nil {
			t.Fatalf("re-Apply %d = %v", i, err)
		}
		if len(s.saves) != 2 {
			t.Fatalf("re-Apply %d wrote apps: %+v", i, s.saves[2:])
		}
	}
	s.checkApps(t, all, "app-1", "app-2")
	if a1, a2 := s.launches("app-1", "2024-03-10"), s.launches("app-2", "2024-03-10"); a1 != 2 || a2 != 2 {
		t.Errorf("after redelivery launches app-1 %d app-2 %d, want 2 and 2", a1, a2)
	}
	if got, _ := m.Checkpoint(ctx, 5); got != 12 {
		t.Errorf("Checkpoint(5) after redelivery = %d, want 12", got)
	}
	if got, _ := m.Checkpoint(ctx, 6); got != 0 {
		t.Errorf("Checkpoint(6) = %d, want 0: checkpoints are per partition", got)
	}
}

func TestMongoApplyResumesPartlyAppliedBatch(t *testing.T) {
	// A replica wrote app-1 up to position 3, then died before app-2 and the
	// checkpoint. The batch is redelivered.
	s := newMemDocs()
	b := mongoBatch1()
	s.apps["app-1"] = foldAll("app-1", b[:3])
	if err := newMongoPair(s).Apply(context.Background(), 0, b); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
	want := []AppWrite{{App: foldAll("app-1", b), Prev: 3}, {App: foldAll("app-2", b), Prev: 0}}
	if len(s.saves) != 1 || !reflect.DeepEqual(s.saves[0], want) {
		t.Fatalf("saves = %+v, want one save %+v", s.saves, want)
	}
	s.checkApps(t, b, "app-1", "app-2")
}

func TestMongoApplyRefoldsLostApps(t *testing.T) {
	b := mongoBatch1()
	later := appEv(20, "app-1", &events.AppGranted{Org: "org-late"})
	tests := []struct {
		name string
		// rival writes before the first save.
		rival func(apps map[string]App)
		// all is what the stored apps must end up folded from.
		all       []Event
		wantSaves [][]string
		wantLoads [][]string
		wantPrev  []int64 // Prev of the second save's writes
	}{
		{
			name:      "rival applied a prefix of app-1",
			rival:     func(apps map[string]App) { apps["app-1"] = foldAll("app-1", b[:3]) },
			all:       b,
			wantSaves: [][]string{{"app-1", "app-2"}, {"app-1"}},
			wantLoads: [][]string{{"app-1", "app-2"}, {"app-1"}},
			wantPrev:  []int64{3},
		},
		{
			name:      "rival applied the whole batch to app-1",
			rival:     func(apps map[string]App) { apps["app-1"] = foldAll("app-1", b) },
			all:       b,
			wantSaves: [][]string{{"app-1", "app-2"}},
			wantLoads: [][]string{{"app-1", "app-2"}, {"app-1"}},
		},
		{
			name:      "rival moved app-1 past the batch",
			rival:     func(apps map[string]App) { apps["app-1"] = foldAll("app-1", append(mongoBatch1(), later)) },
			all:       append(mongoBatch1(), later),
			wantSaves: [][]string{{"app-1", "app-2"}},
			wantLoads: [][]string{{"app-1", "app-2"}, {"app-1"}},
		},
		{
			name: "rival created both apps",
			rival: func(apps map[string]App) {
				apps["app-1"] = foldAll("app-1", b[:1])
				apps["app-2"] = foldAll("app-2", b[:2])
			},
			all:       b,
			wantSaves: [][]string{{"app-1", "app-2"}, {"app-1", "app-2"}},
			wantLoads: [][]string{{"app-1", "app-2"}, {"app-1", "app-2"}},
			wantPrev:  []int64{1, 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemDocs()
			s.rival = func(n int, apps map[string]App) {
				if n == 0 {
					tt.rival(apps)
				}
			}
			if err := newMongoPair(s).Apply(context.Background(), 1, b); err != nil {
				t.Fatalf("Apply() = %v", err)
			}
			var saves [][]string
			for i := range s.saves {
				saves = append(saves, s.savedIDs(i))
			}
			if !reflect.DeepEqual(saves, tt.wantSaves) {
				t.Errorf("saves wrote %v, want %v", saves, tt.wantSaves)
			}
			if !reflect.DeepEqual(s.loads, tt.wantLoads) {
				t.Errorf("loads = %v, want %v", s.loads, tt.wantLoads)
			}
			if tt.wantPrev != nil {
				var prev []int64
				for _, w := range s.saves[1] {
					prev = append(prev, w.Prev)
				}
				if !slices.Equal(prev, tt.wantPrev) {
					t.Errorf("second save Prev = %v, want %v", prev, tt.wantPrev)
				}
			}
			s.checkApps(t, tt.all, "app-1", "app-2")
			if got := s.cps[cpKey(AppsName, 1)]; got != 9 {
				t.Errorf("checkpoint = %d, want 9", got)
			}
			if got := s.launches("app-1", "2024-03-10"); got != 2 {
				t.Errorf("app-1 launches = %d, want 2", got)
			}
		})
	}
}

// rivalCreated is app-1 as created at position 1, before the batches of
// the repeated-loss tests.
func rivalCreated() Event { return appEv(1, "app-1", &events.AppCreated{Name: "rival"}) }

// keepWinning returns a rival that moves the stored app-1 on by one
// position in each of the first n saves, always below the batch, so each
// of those saves loses app-1.
func keepWinning(n int) func(int, map[string]App) {
	return func(call int, apps map[string]App) {
		if call >= n {
			return
		}
		a := apps["app-1"]
		pos := uint64(a.Position + 1)
		a.Apply(appEv(pos, "app-1", &events.AppGranted{Org: fmt.Sprintf("org-r%d", pos)}))
		apps["app-1"] = a
	}
}

// laterBatch is mongoBatch1 moved to positions above 100 without app-1's
// create, so it continues app-1 from rivalCreated and a rival at low
// positions never overtakes it.
func laterBatch() []Event {
	var out []Event
	for _, e := range mongoBatch1()[1:] {
		e.Position += 100
		e.OccurredAt = minute(e.Position)
		e.CausationID = fmt.Sprintf("cmd-%d", e.Position)
		out = append(out, e)
	}
	return out
}

func TestMongoApplyGivesUpAfterRepeatedLosses(t *testing.T) {
	s := newMemDocs()
	s.apps["app-1"] = foldAll("app-1", []Event{rivalCreated()})
	s.rival = keepWinning(maxRefolds)
	err := newMongoPair(s).Apply(context.Background(), 0, laterBatch())
	if !errors.Is(err, events.ErrConflict) {
		t.Fatalf("Apply() = %v, want it to wrap events.ErrConflict", err)
	}
	if !strings.Contains(err.Error(), "app-1") || strings.Contains(err.Error(), "app-2") {
		t.Errorf("error %q should name app-1 (and only it)", err)
	}
	if events.IsPermanent(err) {
		t.Errorf("a conflict is retryable, IsPermanent(%v) = true", err)
	}
	if len(s.saves) != maxRefolds {
		t.Errorf("SaveApps called %d times, want %d", len(s.saves), maxRefolds)
	}
	for i := 1; i < len(s.saves); i++ {
		if got := s.savedIDs(i); !slices.Equal(got, []string{"app-1"}) {
			t.Errorf("save %d wrote %v, want only app-1", i, got)
		}
	}
	if slices.Contains(s.calls, "daily") || slices.Contains(s.calls, "checkpoint") {
		t.Errorf("calls %v: nothing may follow a failed apps write", s.calls)
	}
	if got := s.cps[cpKey(AppsName, 0)]; got != 0 {
		t.Errorf("checkpoint = %d after a conflict, want 0", got)
	}
}

func TestMongoApplyWinsOnLastRefold(t *testing.T) {
	s := newMemDocs()
	s.apps["app-1"] = foldAll("app-1", []Event{rivalCreated()})
	s.rival = keepWinning(maxRefolds - 1)
	b := laterBatch()
	if err := newMongoPair(s).Apply(context.Background(), 0, b); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
	if len(s.saves) != maxRefolds {
		t.Errorf("SaveApps called %d times, want %d", len(s.saves), maxRefolds)
	}
	if got, want := s.saves[len(s.saves)-1][0].Prev, int64(maxRefolds); got != want {
		t.Errorf("last write of app-1 has Prev %d, want %d", got, want)
	}
	// The stored app is the fold of the create, the rival's grants
	// (positions 2..maxRefolds) and the batch.
	all := []Event{rivalCreated()}
	for p := uint64(2); p <= maxRefolds; p++ {
		all = append(all, appEv(p, "app-1", &events.AppGranted{Org: fmt.Sprintf("org-r%d", p)}))
	}
	all = append(all, b...)
	s.checkApps(t, all, "app-1", "app-2")
	if got := len(s.apps["app-1"].Grants); got != maxRefolds-1 {
		t.Errorf("app-1 has %d grants, want the rival's %d", got, maxRefolds-1)
	}
	if got := s.cps[cpKey(AppsName, 0)]; got != 109 {
		t.Errorf("checkpoint = %d, want 109", got)
	}
}

func TestMongoApplyStoreErrors(t *testing.T) {
	boom := errors.New("connection reset")
	tests := []struct {
		name      string
		set       func(s *memDocs)
		wantCalls []string
		failed    string // the projection whose checkpoint must not move
	}{
		{"load fails", func(s *memDocs) { s.loadErr = boom }, []string{"load"}, AppsName},
		{"save fails", func(s *memDocs) { s.saveErr = boom }, []string{"load", "save"}, AppsName},
		{"save fails after writing", func(s *memDocs) { s.saveErr, s.failLate = boom, true }, []string{"load", "save"}, AppsName},
		{"daily launches fail", func(s *memDocs) { s.dailyErr = boom }, []string{"load", "save", "checkpoint", "daily"}, DailyStatsName},
		{"daily launches fail after counting", func(s *memDocs) { s.dailyErr, s.failLate = boom, true }, []string{"load", "save", "checkpoint", "daily"}, DailyStatsName},
		{"checkpoint fails", func(s *memDocs) { s.cpErr = boom }, []string{"load", "save", "checkpoint"}, AppsName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := newMemDocs()
			tt.set(s)
			b := mongoBatch1()
			err := newMongoPair(s).Apply(ctx, 4, b)
			if !errors.Is(err, boom) {
				t.Fatalf("Apply() = %v, want it to wrap %v", err, boom)
			}
			if !strings.Contains(err.Error(), "projection") {
				t.Errorf("error %q does not say where it failed", err)
			}
			if !slices.Equal(s.calls, tt.wantCalls) {
				t.Errorf("calls = %v, want %v", s.calls, tt.wantCalls)
			}
			if got := s.cps[cpKey(tt.failed, 4)]; got != 0 {
				t.Errorf("checkpoint = %d after a failed Apply, want 0", got)
			}

			// The caller retries the batch; its effect lands exactly once.
			s.loadErr, s.saveErr, s.dailyErr, s.cpErr = nil, nil, nil, nil
			if err := newMongoPair(s).Apply(ctx, 4, b); err != nil {
				t.Fatalf("retry Apply() = %v", err)
			}
			s.checkApps(t, b, "app-1", "app-2")
			if a1, a2 := s.launches("app-1", "2024-03-10"), s.launches("app-2", "2024-03-10"); a1 != 2 || a2 != 1 {
				t.Errorf("after retry launches app-1 %d app-2 %d, want 2 and 1", a1, a2)
			}
			if got := s.cps[cpKey(tt.failed, 4)]; got != 9 {
				t.Errorf("checkpoint after retry = %d, want 9", got)
			}
		})
	}
}

func TestMongoApplyLaunchesOnly(t *testing.T) {
	s := newMemDocs()
	b := []Event{
		launchEv(31, "app-1", "dev-a", statDay),
		launchEv(32, "app-1", "dev-a", statDay.Add(24*time.Hour)),
		launchEv(33, "app-1", "dev-b", statDay),
	}
	if err := newMongoPair(s).Apply(context.Background(), 2, b); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
	if want := []string{"checkpoint", "daily", "checkpoint"}; !slices.Equal(s.calls, want) {
		t.Fatalf("calls = %v, want %v", s.calls, want)
	}
	if d1, d2 := s.launches("app-1", "2024-03-10"), s.launches("app-1", "2024-03-11"); d1 != 2 || d2 != 1 {
		t.Errorf("launches %d and %d, want 2 and 1", d1, d2)
	}
	if c := s.counters["app-1:2024-03-10"]; c == nil || len(c.devices) != 2 || c.pos != 33 {
		t.Errorf("counter = %+v, want 2 devices at 33", c)
	}
	if got := s.cps[cpKey(DailyStatsName, 2)]; got != 33 {
		t.Errorf("checkpoint = %d, want 33", got)
	}
}

func TestMongoApplyEmptyBatch(t *testing.T) {
	s := newMemDocs()
	if err := newMongoPair(s).Apply(context.Background(), 0, nil); err != nil {
		t.Fatalf("Apply(nil) = %v", err)
	}
	if len(s.calls) != 0 {
		t.Fatalf("empty batch made calls %v", s.calls)
	}
}

func TestMongoApplyAppEventsOnlyNoDaily(t *testing.T) {
	s := newMemDocs()
	b := []Event{appEv(1, "app-1", &events.AppCreated{Name: "x"})}
	if err := newMongoPair(s).Apply(context.Background(), 0, b); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
	// Each projection checkpoints; daily stats has no counter to write.
	if want := []string{"load", "save", "checkpoint", "checkpoint"}; !slices.Equal(s.calls, want) {
		t.Fatalf("calls = %v, want %v", s.calls, want)
	}
}

// mongoPair applies both MongoDB projections to a batch, apps first, as a
// replica's two runners would.
type mongoPair struct {
	apps  *Apps
	stats *DailyStats
}

func newMongoPair(s DocStore) mongoPair { return mongoPair{NewApps(s), NewDailyStats(s)} }

// Checkpoint is where the pair resumes: the lower of the two checkpoints.
func (m mongoPair) Checkpoint(ctx context.Context, p int) (uint64, error) {
	a, err := m.apps.Checkpoint(ctx, p)
	if err != nil {
		return 0, err
	}
	d, err := m.stats.Checkpoint(ctx, p)
	return min(a, d), err
}

func (m mongoPair) Apply(ctx context.Context, p int, b []Event) error {
	if err := m.apps.Apply(ctx, p, b); err != nil {
		return err
	}
	return m.stats.Apply(ctx, p, b)
}
