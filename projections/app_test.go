package projections

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
)

// base is the time of position 0 in these tests; an event at position p
// occurred p minutes later (see appEv).
var base = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// minute returns the test time of position p.
func minute(p uint64) time.Time { return base.Add(time.Duration(p) * time.Minute) }

// appEv returns an event of app aggregate id at stream position pos,
// caused by command "cmd-<pos>".
func appEv(pos uint64, id string, payload any) Event {
	return Event{
		Record: events.Record{
			Envelope: events.Envelope{
				ID:            fmt.Sprintf("evt-%d", pos),
				Tenant:        "org-1",
				AggregateType: events.AggregateApp,
				AggregateID:   id,
				OccurredAt:    minute(pos),
				CausationID:   fmt.Sprintf("cmd-%d", pos),
			},
			Position: pos,
		},
		Payload: payload,
	}
}

// launchEv returns an app.launched usage event of appID at position pos.
func launchEv(pos uint64, appID, device string, at time.Time) Event {
	return Event{
		Record: events.Record{
			Envelope: events.Envelope{
				ID:            fmt.Sprintf("evt-%d", pos),
				Type:          events.TypeAppLaunched,
				Tenant:        "org-1",
				AggregateType: events.AggregateUsage,
				AggregateID:   appID,
				OccurredAt:    at,
			},
			Position: pos,
		},
		Payload: &events.AppLaunched{AppID: appID, Version: "1.0.0", DeviceID: device, Org: "org-9", At: at},
	}
}

// cloneApp returns a deep copy of a, sharing no slice with it.
func cloneApp(a App) App {
	a.Versions = slices.Clone(a.Versions)
	a.Releases = slices.Clone(a.Releases)
	a.Grants = slices.Clone(a.Grants)
	a.Causes = slices.Clone(a.Causes)
	return a
}

// foldAll folds the events of app id in batch into a new App.
func foldAll(id string, batch []Event) App {
	var a App
	for _, e := range batch {
		if e.AggregateID == id {
			a.Apply(e)
		}
	}
	return a
}

// lifecycle is the history of app-1 used by several tests. Positions are
// sparse, as on a stream shared with other aggregates.
func lifecycle() []Event {
	return []Event{
		appEv(10, "app-1", &events.AppCreated{Name: "Weather"}),
		appEv(20, "app-1", &events.VersionSubmitted{Version: "1.0.0", Notes: "first"}),
		appEv(30, "app-1", &events.VersionSubmitted{Version: "1.1.0"}),
		appEv(40, "app-1", &events.VersionApproved{Version: "1.0.0"}),
		appEv(50, "app-1", &events.VersionRejected{Version: "1.1.0", Reason: "crashes on start"}),
		appEv(60, "app-1", &events.ReleasePublished{Version: "1.0.0"}),
		appEv(70, "app-1", &events.VersionSubmitted{Version: "1.2.0"}),
		appEv(80, "app-1", &events.VersionApproved{Version: "1.2.0"}),
		appEv(90, "app-1", &events.ReleasePublished{Version: "1.2.0"}),
		appEv(100, "app-1", &events.AppGranted{Org: "org-c"}),
		appEv(110, "app-1", &events.AppGranted{Org: "org-b"}),
		appEv(120, "app-1", &events.AppRevoked{Org: "org-c"}),
		appEv(130, "app-1", &events.ReleaseRolledBack{From: "1.2.0", To: "1.0.0"}),
	}
}

func TestAppApplyLifecycle(t *testing.T) {
	var a App
	if a.Exists() {
		t.Fatal("zero App exists")
	}
	for _, e := range lifecycle() {
		if !a.Apply(e) {
			t.Fatalf("Apply(%T at %d) = false, want true", e.Payload, e.Position)
		}
		if a.Position != int64(e.Position) || !a.UpdatedAt.Equal(minute(e.Position)) {
			t.Fatalf("after %d: Position %d UpdatedAt %v", e.Position, a.Position, a.UpdatedAt)
		}
	}
	var causes []string
	for p := 10; p <= 130; p += 10 {
		causes = append(causes, fmt.Sprintf("cmd-%d", p))
	}
	want := App{
		ID:     "app-1",
		Tenant: "org-1",
		Name:   "Weather",
		Versions: []Version{
			{Version: "1.0.0", Status: VersionApproved, Notes: "first", SubmittedAt: minute(20), DecidedAt: minute(40)},
			{Version: "1.1.0", Status: VersionRejected, Reason: "crashes on start", SubmittedAt: minute(30), DecidedAt: minute(50)},
			{Version: "1.2.0", Status: VersionApproved, SubmittedAt: minute(70), DecidedAt: minute(80)},
		},
		Release:   "1.0.0",
		Releases:  []string{"1.0.0"},
		Grants:    []string{"org-b"},
		CreatedAt: minute(10),
		UpdatedAt: minute(130),
		Position:  130,
		Causes:    causes,
	}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("state after lifecycle:\n got %+v\nwant %+v", a, want)
	}
	if !a.Exists() {
		t.Error("Exists() = false after create")
	}
	if v := a.Version("1.1.0"); v == nil || v.Status != VersionRejected {
		t.Errorf("Version(1.1.0) = %+v", v)
	}
	if v := a.Version("9.9.9"); v != nil {
		t.Errorf("Version(9.9.9) = %+v, want nil", v)
	}
	if !a.HasCause("cmd-60") || a.HasCause("cmd-61") || a.HasCause("") {
		t.Errorf("HasCause: cmd-60 %v, cmd-61 %v, empty %v", a.HasCause("cmd-60"), a.HasCause("cmd-61"), a.HasCause(""))
	}
}

func TestAppApplyIdempotent(t *testing.T) {
	created := appEv(10, "app-1", &events.AppCreated{Name: "Weather"})
	submitted := appEv(20, "app-1", &events.VersionSubmitted{Version: "1.0.0"})
	tests := []struct {
		name string
		e    Event
	}{
		{"same event again", submitted},
		{"first event again", created},
		{"older position, other payload", appEv(15, "app-1", &events.AppGranted{Org: "org-x"})},
		{"same position, other payload", appEv(20, "app-1", &events.VersionSubmitted{Version: "6.6.6"})},
		{"position zero", appEv(0, "app-1", &events.AppGranted{Org: "org-x"})},
		{"other aggregate type", func() Event {
			e := appEv(30, "app-1", &events.AppGranted{Org: "org-x"})
			e.AggregateType = events.AggregateUsage
			return e
		}()},
		{"launch of this app", launchEv(30, "app-1", "dev-1", minute(30))},
		{"launch payload on the app aggregate", appEv(30, "app-1", &events.AppLaunched{AppID: "app-1", DeviceID: "d", At: minute(30)})},
		{"nil payload", appEv(30, "app-1", nil)},
		{"payload not a pointer", appEv(30, "app-1", events.AppGranted{Org: "org-x"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a App
			a.Apply(created)
			a.Apply(submitted)
			before := cloneApp(a)
			if a.Apply(tt.e) {
				t.Fatalf("Apply() = true, want false")
			}
			if !reflect.DeepEqual(a, before) {
				t.Fatalf("state changed:\n got %+v\nwant %+v", a, before)
			}
		})
	}
}

func TestAppApplyTimesMillisecondUTC(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*3600+30*60)
	now := time.Now().In(zone) // carries a monotonic reading and nanoseconds
	tests := []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"sub-millisecond dropped, zone to UTC", time.Date(2024, 5, 1, 3, 4, 5, 123456789, zone), time.Date(2024, 4, 30, 21, 34, 5, 123000000, time.UTC)},
		{"exact millisecond kept", time.Date(2024, 5, 1, 3, 4, 5, 7000000, time.UTC), time.Date(2024, 5, 1, 3, 4, 5, 7000000, time.UTC)},
		{"999999 ns rounds down", time.Date(2024, 5, 1, 3, 4, 5, 999999, time.UTC), time.Date(2024, 5, 1, 3, 4, 5, 0, time.UTC)},
		{"now", now, time.UnixMilli(now.UnixMilli()).UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := []Event{
				appEv(1, "app-1", &events.AppCreated{Name: "x"}),
				appEv(2, "app-1", &events.VersionSubmitted{Version: "1"}),
				appEv(3, "app-1", &events.VersionApproved{Version: "1"}),
			}
			var a App
			for _, e := range evs {
				e.OccurredAt = tt.at
				a.Apply(e)
			}
			for name, got := range map[string]time.Time{
				"CreatedAt": a.CreatedAt, "UpdatedAt": a.UpdatedAt,
				"SubmittedAt": a.Versions[0].SubmittedAt, "DecidedAt": a.Versions[0].DecidedAt,
			} {
				// == also compares location and monotonic reading.
				if got != tt.want {
					t.Errorf("%s = %v (loc %v), want %v", name, got, got.Location(), tt.want)
				}
			}
		})
	}
}

func TestAppCausesKeepNewest64(t *testing.T) {
	var a App
	a.Apply(appEv(1, "app-1", &events.AppCreated{Name: "x"}))
	for p := uint64(2); p <= 100; p++ {
		e := appEv(p, "app-1", &events.AppGranted{Org: fmt.Sprintf("org-%d", p%5)})
		a.Apply(e)
		if want := min(int(p), 64); len(a.Causes) != want {
			t.Fatalf("after %d events: %d causes, want %d", p, len(a.Causes), want)
		}
	}
	if a.Causes[0] != "cmd-37" || a.Causes[63] != "cmd-100" {
		t.Fatalf("Causes = %s … %s, want cmd-37 … cmd-100", a.Causes[0], a.Causes[len(a.Causes)-1])
	}
	for i, c := range a.Causes {
		if want := fmt.Sprintf("cmd-%d", 37+i); c != want {
			t.Fatalf("Causes[%d] = %s, want %s", i, c, want)
		}
	}
	if a.HasCause("cmd-36") || !a.HasCause("cmd-37") || !a.HasCause("cmd-100") {
		t.Error("HasCause does not match the kept window")
	}
	// An event without a causation id applies but remembers nothing.
	e := appEv(101, "app-1", &events.AppGranted{Org: "org-z"})
	e.CausationID = ""
	if !a.Apply(e) {
		t.Fatal("Apply without causation id = false")
	}
	if len(a.Causes) != 64 || a.Causes[63] != "cmd-100" {
		t.Errorf("event without causation id changed Causes: len %d, last %s", len(a.Causes), a.Causes[len(a.Causes)-1])
	}
}

func TestAppGrants(t *testing.T) {
	steps := []struct {
		payload any
		want    []string
	}{
		{&events.AppGranted{Org: "org-c"}, []string{"org-c"}},
		{&events.AppGranted{Org: "org-a"}, []string{"org-a", "org-c"}},
		{&events.AppGranted{Org: "org-b"}, []string{"org-a", "org-b", "org-c"}},
		{&events.AppGranted{Org: "org-a"}, []string{"org-a", "org-b", "org-c"}},
		{&events.AppRevoked{Org: "org-b"}, []string{"org-a", "org-c"}},
		{&events.AppRevoked{Org: "org-x"}, []string{"org-a", "org-c"}},
		{&events.AppRevoked{Org: "org-a"}, []string{"org-c"}},
		{&events.AppRevoked{Org: "org-c"}, []string{}},
		{&events.AppGranted{Org: "org-0"}, []string{"org-0"}},
	}
	var a App
	a.Apply(appEv(1, "app-1", &events.AppCreated{Name: "x"}))
	for i, s := range steps {
		pos := uint64(i + 2)
		if !a.Apply(appEv(pos, "app-1", s.payload)) {
			t.Fatalf("step %d: Apply(%+v) = false", i, s.payload)
		}
		if !slices.Equal(a.Grants, s.want) {
			t.Fatalf("step %d (%T %+v): Grants = %v, want %v", i, s.payload, s.payload, a.Grants, s.want)
		}
		if a.Position != int64(pos) {
			t.Fatalf("step %d: Position = %d, want %d", i, a.Position, pos)
		}
	}
}

func TestAppReleasesAndRollback(t *testing.T) {
	steps := []struct {
		payload      any
		wantRelease  string
		wantReleases []string
		wantPrevious string
	}{
		{&events.ReleasePublished{Version: "v1"}, "v1", []string{"v1"}, ""},
		{&events.ReleasePublished{Version: "v2"}, "v2", []string{"v1", "v2"}, "v1"},
		{&events.ReleasePublished{Version: "v3"}, "v3", []string{"v1", "v2", "v3"}, "v2"},
		{&events.ReleaseRolledBack{From: "v3", To: "v2"}, "v2", []string{"v1", "v2"}, "v1"},
		{&events.ReleasePublished{Version: "v4"}, "v4", []string{"v1", "v2", "v4"}, "v2"},
		{&events.ReleaseRolledBack{From: "v4", To: "v2"}, "v2", []string{"v1", "v2"}, "v1"},
		{&events.ReleaseRolledBack{From: "v2", To: "v1"}, "v1", []string{"v1"}, ""},
		{&events.ReleaseRolledBack{From: "v1", To: ""}, "", []string{}, ""},
		// A rollback with nothing left to pop still applies its To.
		{&events.ReleaseRolledBack{From: "", To: ""}, "", []string{}, ""},
		{&events.ReleasePublished{Version: "v5"}, "v5", []string{"v5"}, ""},
	}
	var a App
	a.Apply(appEv(1, "app-1", &events.AppCreated{Name: "x"}))
	if a.Previous() != "" {
		t.Fatalf("Previous() of a new app = %q", a.Previous())
	}
	for i, s := range steps {
		if !a.Apply(appEv(uint64(i+2), "app-1", s.payload)) {
			t.Fatalf("step %d: Apply(%+v) = false", i, s.payload)
		}
		if a.Release != s.wantRelease || !slices.Equal(a.Releases, s.wantReleases) || a.Previous() != s.wantPrevious {
			t.Fatalf("step %d (%T %+v): Release %q Releases %v Previous %q; want %q %v %q",
				i, s.payload, s.payload, a.Release, a.Releases, a.Previous(), s.wantRelease, s.wantReleases, s.wantPrevious)
		}
	}
}

func TestAppReviewOfUnknownVersion(t *testing.T) {
	var a App
	a.Apply(appEv(1, "app-1", &events.AppCreated{Name: "x"}))
	a.Apply(appEv(2, "app-1", &events.VersionSubmitted{Version: "1"}))
	before := cloneApp(a)
	// The event is applied (its position is taken) but no version appears.
	if !a.Apply(appEv(3, "app-1", &events.VersionApproved{Version: "2"})) {
		t.Fatal("Apply = false")
	}
	if !reflect.DeepEqual(a.Versions, before.Versions) || a.Position != 3 {
		t.Fatalf("Versions %+v Position %d; want %+v at 3", a.Versions, a.Position, before.Versions)
	}
}

func TestAppHasCause(t *testing.T) {
	// Even a stored cause list holding an empty id never matches "".
	a := App{Causes: []string{"", "cmd-1"}}
	tests := []struct {
		id   string
		want bool
	}{
		{"", false},
		{"cmd-1", true},
		{"cmd-2", false},
		{"CMD-1", false},
	}
	for _, tt := range tests {
		if got := a.HasCause(tt.id); got != tt.want {
			t.Errorf("HasCause(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestApplyIgnoresEventsOfAnAppThatWasNeverCreated(t *testing.T) {
	var a App
	grant := Event{Record: events.Record{Envelope: events.Envelope{Type: events.TypeAppGranted, AggregateType: events.AggregateApp, AggregateID: "ghost"}, Position: 5}, Payload: &events.AppGranted{Org: "org-2"}}
	if a.Apply(grant) || a.Exists() || a.ID != "" {
		t.Fatalf("a grant on a never-created app changed it: %+v", a)
	}
	create := Event{Record: events.Record{Envelope: events.Envelope{Type: events.TypeAppCreated, AggregateType: events.AggregateApp, AggregateID: "ghost", Tenant: "org-1"}, Position: 6}, Payload: &events.AppCreated{Name: "G"}}
	if !a.Apply(create) {
		t.Fatal("create did not apply")
	}
	again := create
	again.Position = 7
	if a.Apply(again) || a.Position != 6 {
		t.Fatalf("a second creation applied: %+v", a)
	}
}
