package handlers

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
)

func launch(i int) Launch {
	return Launch{
		ID: fmt.Sprintf("l-%d", i), AppID: appID, Version: "1.0", DeviceID: fmt.Sprintf("device-%d", i),
		Org: other, At: testNow().Add(-time.Duration(i) * time.Minute),
	}
}

func TestIngestAppendsOneBatch(t *testing.T) {
	m := newMemLog(t)
	batch := []Launch{launch(0), launch(1), launch(2)}
	batch[1].ID = ""
	batch[2].ID, batch[2].Version = "", ""
	n, err := newTestService(m, Config{}).Ingest(context.Background(), batch)
	if err != nil || n != 3 {
		t.Fatalf("Ingest = %d, %v; want 3", n, err)
	}
	if m.appends != 1 || m.expected[0] != nil {
		t.Fatalf("%d Append calls, expected %v; want 1 unconditional call", m.appends, m.expected)
	}
	ids := map[string]bool{}
	for i, env := range m.stream {
		l := batch[i]
		if err := env.Validate(); err != nil {
			t.Fatalf("launch %d: %v", i, err)
		}
		if l.ID != "" && env.ID != l.ID {
			t.Errorf("launch %d: id %q, want %q", i, env.ID, l.ID)
		}
		ids[env.ID] = true
		got := [...]string{env.Type, env.AggregateType, env.AggregateID, env.Tenant}
		if want := [...]string{events.TypeAppLaunched, events.AggregateUsage, appID, other}; got != want {
			t.Errorf("launch %d: type, aggregate, tenant = %q, want %q", i, got, want)
		}
		if env.SchemaVersion != 1 || !env.OccurredAt.Equal(l.At) || env.OccurredAt.Location() != time.UTC {
			t.Errorf("launch %d: schema %d, occurred at %v", i, env.SchemaVersion, env.OccurredAt)
		}
		data, err := events.Domain().Decode(env)
		if err != nil {
			t.Fatalf("launch %d: %v", i, err)
		}
		want := &events.AppLaunched{AppID: appID, Version: l.Version, DeviceID: l.DeviceID, Org: other, At: l.At.UTC()}
		if !reflect.DeepEqual(data, want) {
			t.Errorf("launch %d: data %+v, want %+v", i, data, want)
		}
	}
	if len(ids) != 3 {
		t.Errorf("event ids %v are not distinct", ids)
	}
	if batch[1].ID != "" {
		t.Error("Ingest modified the caller's batch")
	}
}

func TestIngestValidation(t *testing.T) {
	edit := func(fn func(*Launch)) []Launch {
		batch := []Launch{launch(0), launch(1), launch(2)}
		fn(&batch[2])
		return batch
	}
	cases := []struct {
		name  string
		batch []Launch
		field string
	}{
		{"bad id", edit(func(l *Launch) { l.ID = "l.2" }), "launches[2].id"},
		{"no app id", edit(func(l *Launch) { l.AppID = "" }), "launches[2].app_id"},
		{"bad version", edit(func(l *Launch) { l.Version = "1 0" }), "launches[2].version"},
		{"no device", edit(func(l *Launch) { l.DeviceID = "" }), "launches[2].device_id"},
		{"device too long", edit(func(l *Launch) { l.DeviceID = strings.Repeat("d", 129) }), "launches[2].device_id"},
		{"no org", edit(func(l *Launch) { l.Org = "" }), "launches[2].org"},
		{"bad org", edit(func(l *Launch) { l.Org = "org/2" }), "launches[2].org"},
		{"no time", edit(func(l *Launch) { l.At = time.Time{} }), "launches[2].at"},
		{"too far ahead", edit(func(l *Launch) { l.At = testNow().Add(MaxLaunchAhead + time.Second) }), "launches[2].at"},
		{"too many", make([]Launch, 4), "launches"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemLog(t)
			n, err := newTestService(m, Config{MaxLaunchBatch: 3}).Ingest(context.Background(), tc.batch)
			var verr *ValidationError
			if !errors.As(err, &verr) || verr.Field != tc.field {
				t.Fatalf("Ingest = %v, want a ValidationError of field %q", err, tc.field)
			}
			if n != 0 || m.appends != 0 {
				t.Errorf("Ingest reported %d and called Append %d times, want nothing", n, m.appends)
			}
		})
	}
}

func TestIngestEdges(t *testing.T) {
	m := newMemLog(t)
	s := newTestService(m, Config{})
	if n, err := s.Ingest(context.Background(), nil); n != 0 || err != nil || m.appends != 0 {
		t.Errorf("empty batch: %d, %v, %d appends", n, err, m.appends)
	}
	ahead := launch(0)
	ahead.At = testNow().Add(MaxLaunchAhead)
	if n, err := s.Ingest(context.Background(), []Launch{ahead}); n != 1 || err != nil {
		t.Errorf("launch exactly %s ahead: %d, %v", MaxLaunchAhead, n, err)
	}
	boom := errors.New("boom")
	m.appendErr = boom
	if n, err := s.Ingest(context.Background(), []Launch{launch(1)}); n != 0 || !errors.Is(err, boom) {
		t.Errorf("append failure: %d, %v", n, err)
	}
}
