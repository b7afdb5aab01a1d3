package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
)

// launchFields are the fields of a Launch a ValidationError may name.
var launchFields = map[string]bool{"id": true, "app_id": true, "version": true, "device_id": true, "org": true, "at": true}

// FuzzIngest ingests a batch of n copies of an arbitrary launch (at the
// instant sec, nsec after the Unix epoch, in a zone offset seconds east of
// UTC) through an Ingester over the in-memory log, with batches of at most
// 3. Ingest must not panic. It either refuses the batch with a
// *ValidationError naming "launches" or the first launch's field, and
// appends nothing, or appends one app.launched event per launch, each of
// which validates, survives events.Marshal and Unmarshal, decodes, and
// carries the launch's fields.
func FuzzIngest(f *testing.F) {
	at := testNow().Add(-time.Hour)
	add := func(n uint8, l Launch, t time.Time) {
		_, off := t.Zone()
		f.Add(n, l.ID, l.AppID, l.Version, l.DeviceID, l.Org, t.Unix(), int64(t.Nanosecond()), int32(off))
	}
	add(1, launch(0), at)
	add(3, launch(1), at)
	add(0, launch(1), at)
	add(4, launch(1), at)
	add(1, withLaunch(launch(0), func(l *Launch) { l.ID, l.Version = "", "" }), at)
	add(1, withLaunch(launch(0), func(l *Launch) { l.DeviceID = strings.Repeat("d", 128) }), at)
	add(1, withLaunch(launch(0), func(l *Launch) { l.DeviceID = strings.Repeat("é", 64) }), at)
	add(1, withLaunch(launch(0), func(l *Launch) { l.DeviceID = "\xff\xfe" }), at)
	add(1, withLaunch(launch(0), func(l *Launch) { l.DeviceID = "\u0000<&>\u2028" }), at)
	add(1, withLaunch(launch(0), func(l *Launch) { l.ID = "l.0" }), at)
	add(1, withLaunch(launch(0), func(l *Launch) { l.Version = "1 0" }), at)
	add(1, withLaunch(launch(0), func(l *Launch) { l.Org = "org/2" }), at)
	add(1, launch(0), testNow().Add(MaxLaunchAhead))
	add(1, launch(0), testNow().Add(MaxLaunchAhead+time.Nanosecond))
	add(1, launch(0), time.Time{})
	// Times whose UTC form has no 4-digit year, and odd zone offsets.
	add(1, launch(0), time.Date(0, 1, 1, 0, 30, 0, 0, time.FixedZone("", 3600)))
	add(1, launch(0), time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC))
	add(1, launch(0), time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 99*3600)))
	add(1, launch(0), time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", -3600-1)))

	f.Fuzz(func(t *testing.T, n uint8, id, app, version, device, org string, sec, nsec int64, offset int32) {
		at := time.Unix(sec, nsec).In(time.FixedZone("fuzz", int(offset)))
		batch := make([]Launch, n%5)
		for i := range batch {
			batch[i] = Launch{ID: id, AppID: app, Version: version, DeviceID: device, Org: org, At: at}
		}
		m := newMemLog(t)
		got, err := NewIngester(m, Config{Now: testNow, MaxLaunchBatch: 3}).Ingest(context.Background(), batch)
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || verr.Reason == "" {
				t.Fatalf("Ingest(%+v) = %v: want a ValidationError", batch, err)
			}
			field, ok := strings.CutPrefix(verr.Field, "launches[0].")
			if !(verr.Field == "launches" && len(batch) > 3) && !(ok && launchFields[field]) {
				t.Fatalf("Ingest(%+v) = %v: names no field of the first launch", batch, err)
			}
			if got != 0 || m.appends != 0 {
				t.Fatalf("refused Ingest(%+v) reported %d and appended %d times", batch, got, m.appends)
			}
			return
		}
		if got != len(batch) || len(m.stream) != len(batch) {
			t.Fatalf("Ingest(%+v) = %d, appended %d events", batch, got, len(m.stream))
		}
		for i, env := range m.stream {
			checkLaunched(t, batch[i], env)
		}
	})
}

// withLaunch returns l with fn applied to it.
func withLaunch(l Launch, fn func(*Launch)) Launch {
	fn(&l)
	return l
}

// checkLaunched asserts that env is the well-formed app.launched event of l.
func checkLaunched(t *testing.T, l Launch, env events.Envelope) {
	t.Helper()
	b, err := events.Marshal(env)
	if err != nil {
		t.Fatalf("event of %+v: %v", l, err)
	}
	back, err := events.Unmarshal(b)
	if err != nil {
		t.Fatalf("event of %+v: %s: %v", l, b, err)
	}
	data, err := events.Domain().Decode(back)
	if err != nil {
		t.Fatalf("event of %+v: %v", l, err)
	}
	d := data.(*events.AppLaunched)
	meta := fmt.Sprint(back.Type, back.Tenant, back.AggregateType, back.AggregateID)
	if meta != fmt.Sprint(events.TypeAppLaunched, l.Org, events.AggregateUsage, l.AppID) ||
		(l.ID != "" && back.ID != l.ID) || !back.OccurredAt.Equal(l.At) {
		t.Fatalf("event of %+v: %+v", l, back)
	}
	if d.AppID != l.AppID || d.Version != l.Version || d.DeviceID != l.DeviceID || d.Org != l.Org || !d.At.Equal(l.At) {
		t.Fatalf("event of %+v carries %+v", l, d)
	}
}
