package projections

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
)

// memHot is an in-memory [HotStore] with the semantics of the real one
// (infra/redis): every write is conditional on its position. It records
// calls so tests can check what the projection asked for, and in which
// order. It only tests the projection's orchestration.
type memHot struct {
	mu       sync.Mutex
	releases map[string]heldRelease
	counters map[string]*heldCounter // by app:day
	cps      map[string]uint64       // by projection:partition
	calls    []string
	hot      []hotCall
	hotErr   error
	cpErr    error
}

type heldRelease struct {
	version string
	pos     uint64
}

type heldCounter struct {
	launches int
	pos      uint64
	devices  map[string]bool
}

type hotCall struct {
	releases []ReleaseChange
	launches []LaunchGroup
}

func newMemHot() *memHot {
	return &memHot{releases: map[string]heldRelease{}, counters: map[string]*heldCounter{}, cps: map[string]uint64{}}
}

func (s *memHot) ApplyHot(_ context.Context, releases []ReleaseChange, launches []LaunchGroup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "hot")
	s.hot = append(s.hot, hotCall{slices.Clone(releases), slices.Clone(launches)})
	if s.hotErr != nil {
		return s.hotErr
	}
	for _, r := range releases {
		if r.Position > s.releases[r.AppID].pos {
			s.releases[r.AppID] = heldRelease{r.Version, r.Position}
		}
	}
	countLaunches(s.counters, launches)
	return nil
}

func (s *memHot) Checkpoint(_ context.Context, projection string, partition int) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cps[cpKey(projection, partition)], nil
}

func (s *memHot) SaveCheckpoint(_ context.Context, projection string, partition int, pos uint64) error {
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

var _ HotStore = (*memHot)(nil)

func TestReleaseChanges(t *testing.T) {
	day := time.Date(2024, 3, 10, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		batch []Event
		want  []ReleaseChange
	}{
		{"empty", nil, nil},
		{"no release events", []Event{
			appEv(1, "app-1", &events.AppCreated{Name: "x"}),
			appEv(2, "app-1", &events.VersionApproved{Version: "1"}),
			launchEv(3, "app-1", "dev-a", day),
		}, nil},
		{"last change per app wins, in order of first appearance", []Event{
			appEv(1, "app-1", &events.ReleasePublished{Version: "1.0"}),
			appEv(2, "app-2", &events.ReleasePublished{Version: "2.0"}),
			appEv(3, "app-1", &events.ReleasePublished{Version: "1.1"}),
			appEv(4, "app-1", &events.AppGranted{Org: "org-2"}),
			appEv(5, "app-3", &events.ReleasePublished{Version: "3.0"}),
			appEv(6, "app-1", &events.ReleaseRolledBack{From: "1.1", To: "1.0"}),
		}, []ReleaseChange{
			{AppID: "app-1", Version: "1.0", Position: 6},
			{AppID: "app-2", Version: "2.0", Position: 2},
			{AppID: "app-3", Version: "3.0", Position: 5},
		}},
		{"rollback to nothing is a change", []Event{
			appEv(1, "app-1", &events.ReleasePublished{Version: "1.0"}),
			appEv(2, "app-1", &events.ReleaseRolledBack{From: "1.0", To: ""}),
		}, []ReleaseChange{{AppID: "app-1", Version: "", Position: 2}}},
		{"publish after rollback wins", []Event{
			appEv(1, "app-1", &events.ReleaseRolledBack{From: "1.0", To: ""}),
			appEv(2, "app-1", &events.ReleasePublished{Version: "2.0"}),
		}, []ReleaseChange{{AppID: "app-1", Version: "2.0", Position: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReleaseChanges(tt.batch)
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ReleaseChanges() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// hotBatch is a batch with release changes and launches of two apps.
func hotBatch() []Event {
	day := time.Date(2024, 3, 10, 9, 0, 0, 0, time.UTC)
	return []Event{
		appEv(1, "app-1", &events.AppCreated{Name: "x"}),
		appEv(2, "app-1", &events.ReleasePublished{Version: "1.0"}),
		launchEv(3, "app-1", "dev-a", day),
		appEv(4, "app-2", &events.ReleasePublished{Version: "2.0"}),
		launchEv(5, "app-1", "dev-b", day),
		launchEv(6, "app-2", "dev-a", day),
		appEv(7, "app-1", &events.ReleaseRolledBack{From: "1.0", To: ""}),
		launchEv(8, "app-1", "dev-a", day),
		appEv(9, "app-2", &events.AppGranted{Org: "org-2"}),
	}
}

func TestRedisApply(t *testing.T) {
	ctx := context.Background()
	s := newMemHot()
	r := NewRedis(s)
	if r.Name() != "redis" || RedisName != "redis" {
		t.Fatalf("Name() = %q; the durable name must stay \"redis\"", r.Name())
	}
	if err := r.Apply(ctx, 3, hotBatch()); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
	if want := []string{"hot", "checkpoint"}; !slices.Equal(s.calls, want) {
		t.Fatalf("calls = %v, want %v", s.calls, want)
	}
	wantReleases := []ReleaseChange{
		{AppID: "app-1", Version: "", Position: 7},
		{AppID: "app-2", Version: "2.0", Position: 4},
	}
	wantLaunches := []LaunchGroup{
		{AppID: "app-1", Day: "2024-03-10", Tenant: "org-1", Positions: []uint64{3, 5, 8}, Devices: []string{"dev-a", "dev-b", "dev-a"}},
		{AppID: "app-2", Day: "2024-03-10", Tenant: "org-1", Positions: []uint64{6}, Devices: []string{"dev-a"}},
	}
	if !reflect.DeepEqual(s.hot[0].releases, wantReleases) {
		t.Errorf("ApplyHot releases = %+v, want %+v", s.hot[0].releases, wantReleases)
	}
	if !reflect.DeepEqual(s.hot[0].launches, wantLaunches) {
		t.Errorf("ApplyHot launches = %+v, want %+v", s.hot[0].launches, wantLaunches)
	}
	if got, err := r.Checkpoint(ctx, 3); err != nil || got != 9 {
		t.Errorf("Checkpoint(3) = %d, %v; want 9 (the batch's last position)", got, err)
	}
	if got, _ := r.Checkpoint(ctx, 4); got != 0 {
		t.Errorf("Checkpoint(4) = %d, want 0", got)
	}
	if got, _ := s.Checkpoint(ctx, AppsName, 3); got != 0 {
		t.Errorf("the redis projection saved a checkpoint under %q", AppsName)
	}
	if c := s.counters["app-1:2024-03-10"]; c.launches != 3 || len(c.devices) != 2 {
		t.Errorf("app-1 counter = %+v, want 3 launches, 2 devices", c)
	}

	// Applying the batch again is a no-op on the store's state.
	snapshot := func() (map[string]heldRelease, map[string]int) {
		counts := map[string]int{}
		for k, c := range s.counters {
			counts[k] = c.launches
		}
		return cloneMap(s.releases), counts
	}
	rel, counts := snapshot()
	if err := r.Apply(ctx, 3, hotBatch()); err != nil {
		t.Fatalf("second Apply() = %v", err)
	}
	rel2, counts2 := snapshot()
	if !reflect.DeepEqual(rel, rel2) || !reflect.DeepEqual(counts, counts2) {
		t.Fatalf("re-applying changed the store: %v %v -> %v %v", rel, counts, rel2, counts2)
	}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestRedisApplyWithoutHotEventsOnlyCheckpoints(t *testing.T) {
	s := newMemHot()
	batch := []Event{
		appEv(11, "app-1", &events.AppCreated{Name: "x"}),
		appEv(12, "app-1", &events.AppGranted{Org: "org-2"}),
	}
	if err := NewRedis(s).Apply(context.Background(), 0, batch); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
	if want := []string{"checkpoint"}; !slices.Equal(s.calls, want) {
		t.Fatalf("calls = %v, want %v", s.calls, want)
	}
	if got := s.cps[cpKey(RedisName, 0)]; got != 12 {
		t.Fatalf("checkpoint = %d, want 12", got)
	}
}

func TestRedisApplyEmptyBatch(t *testing.T) {
	s := newMemHot()
	if err := NewRedis(s).Apply(context.Background(), 0, nil); err != nil {
		t.Fatalf("Apply(nil) = %v", err)
	}
	if len(s.calls) != 0 {
		t.Fatalf("empty batch made calls %v", s.calls)
	}
}

func TestRedisApplyErrors(t *testing.T) {
	boom := errors.New("connection reset")
	tests := []struct {
		name      string
		hotErr    error
		cpErr     error
		wantCalls []string
	}{
		{"hot write fails: no checkpoint", boom, nil, []string{"hot"}},
		{"checkpoint fails", nil, boom, []string{"hot", "checkpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemHot()
			s.hotErr, s.cpErr = tt.hotErr, tt.cpErr
			err := NewRedis(s).Apply(context.Background(), 2, hotBatch())
			if !errors.Is(err, boom) {
				t.Fatalf("Apply() = %v, want it to wrap %v", err, boom)
			}
			if !slices.Equal(s.calls, tt.wantCalls) {
				t.Errorf("calls = %v, want %v", s.calls, tt.wantCalls)
			}
			if got := s.cps[cpKey(RedisName, 2)]; got != 0 {
				t.Errorf("checkpoint = %d after a failed Apply, want 0", got)
			}
			// The caller retries the batch; the retry lands exactly once.
			s.hotErr, s.cpErr = nil, nil
			if err := NewRedis(s).Apply(context.Background(), 2, hotBatch()); err != nil {
				t.Fatalf("retry Apply() = %v", err)
			}
			if c := s.counters["app-1:2024-03-10"]; c.launches != 3 {
				t.Errorf("after retry app-1 counted %d launches, want 3", c.launches)
			}
			if got := s.cps[cpKey(RedisName, 2)]; got != 9 {
				t.Errorf("checkpoint after retry = %d, want 9", got)
			}
		})
	}
}
