package events

import (
	"testing"
	"time"
)

// launchEvent is an app.launched envelope as the stream carries it.
func launchEvent(b *testing.B) []byte {
	b.Helper()
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	raw, err := Marshal(Envelope{
		ID: "0b4c1a52-8d0e-4c4e-9a53-1f0d3f6a2e11", Type: TypeAppLaunched, SchemaVersion: 1, Tenant: "acme",
		AggregateType: AggregateUsage, AggregateID: "weather-app", OccurredAt: at,
		Data: []byte(`{"app_id":"weather-app","version":"1.2.3","device_id":"device-000123","org":"acme","at":"2026-11-23T08:00:00Z"}`),
	})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkDecodeLaunch is what a projection pays per launch event: the
// envelope, then its data.
func BenchmarkDecodeLaunch(b *testing.B) {
	raw := launchEvent(b)
	reg := Domain()
	b.ReportAllocs()
	for b.Loop() {
		e, err := Unmarshal(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := reg.DecodeValid(e); err != nil {
			b.Fatal(err)
		}
	}
}
