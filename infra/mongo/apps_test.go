package mongo_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/projections"
)

// newApp returns a minimal app document at position pos.
func newApp(id string, pos int64) projections.App {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(pos) * time.Second)
	return projections.App{ID: id, Tenant: "org1", Name: "app " + id, CreatedAt: at, UpdatedAt: at, Position: pos}
}

// appWrites returns a write of each app conditional on prev.
func appWrites(prev int64, apps ...projections.App) []projections.AppWrite {
	ws := make([]projections.AppWrite, len(apps))
	for i, a := range apps {
		ws[i] = projections.AppWrite{App: a, Prev: prev}
	}
	return ws
}

// fullApp is an app using every field, with times in UTC at millisecond
// precision (what BSON dates hold).
func fullApp() projections.App {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 123_000_000, time.UTC)
	return projections.App{
		ID: "full", Tenant: "org1", Name: "Full app",
		Versions: []projections.Version{
			{Version: "1.0.0", Status: projections.VersionApproved, Notes: "first", SubmittedAt: t0.Add(time.Minute), DecidedAt: t0.Add(2 * time.Minute)},
			{Version: "1.1.0", Status: projections.VersionRejected, Reason: "crashes", SubmittedAt: t0.Add(3 * time.Minute), DecidedAt: t0.Add(4 * time.Minute)},
			{Version: "1.2.0", Status: projections.VersionSubmitted, SubmittedAt: t0.Add(5 * time.Minute)},
		},
		Release:   "1.0.0",
		Releases:  []string{"1.0.0"},
		Grants:    []string{"org2", "org3"},
		CreatedAt: t0,
		UpdatedAt: t0.Add(5 * time.Minute),
		Position:  42,
		Causes:    []string{"cmd-1", "cmd-2", "cmd-3"},
	}
}

func TestSaveAppsInsert(t *testing.T) { eachMode(t, testSaveAppsInsert) }

func testSaveAppsInsert(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{}))
	a, b := newApp("a", 1), newApp("b", 2)
	lost, err := s.SaveApps(ctx, appWrites(0, a, b))
	if err != nil || len(lost) != 0 {
		t.Fatalf("SaveApps(new) = %v, %v; want no loss", lost, err)
	}
	got, err := s.LoadApps(ctx, []string{"a", "b", "missing"})
	if err != nil {
		t.Fatalf("LoadApps: %v", err)
	}
	want := map[string]projections.App{"a": a, "b": b}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadApps = %+v\nwant %+v", got, want)
	}
}

func TestSaveAppsSecondInsertIsLost(t *testing.T) { eachMode(t, testSaveAppsSecondInsertIsLost) }

func testSaveAppsSecondInsertIsLost(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{}))
	first := newApp("a", 1)
	if lost, err := s.SaveApps(ctx, appWrites(0, first)); err != nil || len(lost) != 0 {
		t.Fatalf("first SaveApps = %v, %v", lost, err)
	}
	second := newApp("a", 3)
	second.Name = "someone else's"
	lost, err := s.SaveApps(ctx, appWrites(0, second, newApp("c", 2)))
	if err != nil {
		t.Fatalf("second SaveApps: %v", err)
	}
	if !slices.Equal(lost, []string{"a"}) {
		t.Errorf("lost = %v, want [a]", lost)
	}
	got, ok, err := s.App(ctx, "a")
	if err != nil || !ok || !reflect.DeepEqual(got, first) {
		t.Errorf("App(a) = %+v, %v, %v; want the first insert %+v", got, ok, err, first)
	}
	if _, ok, _ := s.App(ctx, "c"); !ok {
		t.Error("App(c) absent: an insert beside a lost one was not applied")
	}
}

func TestSaveAppsReplace(t *testing.T) { eachMode(t, testSaveAppsReplace) }

func testSaveAppsReplace(t *testing.T, mode evmongo.Config) {
	tests := []struct {
		name     string
		prev     int64
		wantLost bool
	}{
		{name: "right prev", prev: 5},
		{name: "stale prev", prev: 4, wantLost: true},
		{name: "future prev", prev: 6, wantLost: true},
	}
	e := startEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctx(t)
			s, _ := e.store(t, inMode(mode, evmongo.Config{}))
			stored := newApp("a", 5)
			if _, err := s.SaveApps(ctx, appWrites(0, stored)); err != nil {
				t.Fatalf("seed: %v", err)
			}
			next := newApp("a", 9)
			next.Release = "2.0.0"
			lost, err := s.SaveApps(ctx, appWrites(tt.prev, next))
			if err != nil {
				t.Fatalf("SaveApps: %v", err)
			}
			want := next
			if tt.wantLost {
				want = stored
				if !slices.Equal(lost, []string{"a"}) {
					t.Errorf("lost = %v, want [a]", lost)
				}
			} else if len(lost) != 0 {
				t.Errorf("lost = %v, want none", lost)
			}
			if got, _, err := s.App(ctx, "a"); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("App(a) = %+v, %v\nwant %+v", got, err, want)
			}
		})
	}
}

// TestSaveAppsMixedBulks saves more inserts and replaces than one bulk
// holds, some of each losing, and checks the lost ids and the stored state.
func TestSaveAppsMixedBulks(t *testing.T) { eachMode(t, testSaveAppsMixedBulks) }

func testSaveAppsMixedBulks(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{}))
	const n = 70 // several bulks of FerretMaxBulk
	var seed []projections.App
	for i := range n {
		seed = append(seed, newApp(appID(i), 10))
	}
	if lost, err := s.SaveApps(ctx, appWrites(0, seed...)); err != nil || len(lost) != 0 {
		t.Fatalf("seed SaveApps = %v, %v", lost, err)
	}
	var writes []projections.AppWrite
	var wantLost []string
	for i := range n {
		a := newApp(appID(i), 20)
		switch i % 3 {
		case 0: // replace at the right position: wins
			writes = append(writes, projections.AppWrite{App: a, Prev: 10})
		case 1: // replace at a stale position: lost
			writes = append(writes, projections.AppWrite{App: a, Prev: 9})
			wantLost = append(wantLost, a.ID)
		case 2: // insert over an existing app: lost
			writes = append(writes, projections.AppWrite{App: a, Prev: 0})
			wantLost = append(wantLost, a.ID)
		}
		fresh := newApp("new"+appID(i), 3) // insert of a new app: wins
		writes = append(writes, projections.AppWrite{App: fresh})
	}
	lost, err := s.SaveApps(ctx, writes)
	if err != nil {
		t.Fatalf("SaveApps: %v", err)
	}
	if !slices.Equal(lost, wantLost) {
		t.Errorf("lost = %v\nwant %v", lost, wantLost)
	}
	var ids []string
	for _, w := range writes {
		ids = append(ids, w.App.ID)
	}
	got, err := s.LoadApps(ctx, ids)
	if err != nil {
		t.Fatalf("LoadApps: %v", err)
	}
	for _, w := range writes {
		want := w.App.Position
		if slices.Contains(wantLost, w.App.ID) {
			want = 10
		}
		if got[w.App.ID].Position != want {
			t.Errorf("%s at %d, want %d", w.App.ID, got[w.App.ID].Position, want)
		}
	}
}

func TestLoadAppsRoundTrip(t *testing.T) { eachMode(t, testLoadAppsRoundTrip) }

func testLoadAppsRoundTrip(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{}))
	a := fullApp()
	if lost, err := s.SaveApps(ctx, appWrites(0, a)); err != nil || len(lost) != 0 {
		t.Fatalf("SaveApps = %v, %v", lost, err)
	}
	got, err := s.LoadApps(ctx, []string{"full"})
	if err != nil {
		t.Fatalf("LoadApps: %v", err)
	}
	if !reflect.DeepEqual(got["full"], a) {
		t.Errorf("LoadApps round trip:\n got %+v\nwant %+v", got["full"], a)
	}
	if loc := got["full"].Versions[0].DecidedAt.Location(); loc != time.UTC {
		t.Errorf("loaded time in %v, want UTC", loc)
	}
	if empty, err := s.LoadApps(ctx, nil); err != nil || len(empty) != 0 {
		t.Errorf("LoadApps(nil) = %v, %v; want empty", empty, err)
	}
	if _, ok, err := s.App(ctx, "missing"); ok || err != nil {
		t.Errorf("App(missing) found=%v err=%v; want absent", ok, err)
	}
}

// TestAppTimesKeepMilliseconds documents a BSON limit: dates hold
// milliseconds, so finer parts of a time are dropped on the way through.
func TestAppTimesKeepMilliseconds(t *testing.T) { eachMode(t, testAppTimesKeepMilliseconds) }

func testAppTimesKeepMilliseconds(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{}))
	a := newApp("a", 1)
	a.CreatedAt = time.Date(2026, 3, 1, 10, 0, 0, 123_456_789, time.FixedZone("CET", 3600))
	if _, err := s.SaveApps(ctx, appWrites(0, a)); err != nil {
		t.Fatalf("SaveApps: %v", err)
	}
	got, _, err := s.App(ctx, "a")
	if err != nil {
		t.Fatalf("App: %v", err)
	}
	want := a.CreatedAt.Truncate(time.Millisecond).UTC()
	if got.CreatedAt != want {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want)
	}
}

func appID(i int) string { return "app" + string(rune('A'+i/26)) + string(rune('a'+i%26)) }

func TestAppsOf(t *testing.T) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, evmongo.Config{})
	own, granted, other := newApp("own", 1), newApp("granted", 2), newApp("other", 3)
	own.Tenant, granted.Tenant, other.Tenant = "acme", "globex", "globex"
	granted.Grants = []string{"initech", "acme"}
	if _, err := s.SaveApps(ctx, appWrites(0, own, granted, other)); err != nil {
		t.Fatal(err)
	}
	for tenant, want := range map[string][]string{
		"acme": {"granted", "own"}, "globex": {"granted", "other"}, "initech": {"granted"}, "nobody": {},
	} {
		got, err := s.AppsOf(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("AppsOf(%s) = %v, want %v", tenant, got, want)
		}
	}
}
