package events

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAppLaunchedCheck(t *testing.T) {
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	valid := func() AppLaunched {
		return AppLaunched{AppID: "app-1", Version: "1.0.0", DeviceID: "dev-1", Org: "org-1", At: at}
	}
	tests := []struct {
		name   string
		mutate func(*AppLaunched)
		want   []string
	}{
		{"valid", func(*AppLaunched) {}, nil},
		{"version and org are optional", func(l *AppLaunched) { l.Version, l.Org = "", "" }, nil},
		{"device id with any characters", func(l *AppLaunched) { l.DeviceID = "iPhone 15 / ün.1" }, nil},
		{"device id 128 bytes", func(l *AppLaunched) { l.DeviceID = strings.Repeat("d", 128) }, nil},
		{"app id empty", func(l *AppLaunched) { l.AppID = "" }, []string{"app_id"}},
		{"app id with dot", func(l *AppLaunched) { l.AppID = "app.1" }, []string{"app_id"}},
		{"app id 129 chars", func(l *AppLaunched) { l.AppID = strings.Repeat("a", 129) }, []string{"app_id"}},
		{"device id empty", func(l *AppLaunched) { l.DeviceID = "" }, []string{"device_id"}},
		{"device id 129 bytes", func(l *AppLaunched) { l.DeviceID = strings.Repeat("d", 129) }, []string{"device_id"}},
		{"at zero", func(l *AppLaunched) { l.At = time.Time{} }, []string{"at"}},
		{"all three", func(l *AppLaunched) { *l = AppLaunched{} }, []string{"app_id", "device_id", "at"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := valid()
			tt.mutate(&l)
			err := l.Check()
			if got := fieldsOf(err); !slices.Equal(got, tt.want) {
				t.Fatalf("Check() = %v, names %v, want %v", err, got, tt.want)
			}
		})
	}
}

func TestAppLaunchedDayIsUTC(t *testing.T) {
	east := time.FixedZone("UTC+2", 2*3600)
	west := time.FixedZone("UTC-2", -2*3600)
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"utc midday", time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC), "2024-03-10"},
		{"utc first instant", time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC), "2024-03-10"},
		{"utc last nanosecond", time.Date(2024, 3, 10, 23, 59, 59, 999999999, time.UTC), "2024-03-10"},
		{"23:30 at -02:00 is the next UTC day", time.Date(2024, 3, 10, 23, 30, 0, 0, west), "2024-03-11"},
		{"01:00 at +02:00 is the previous UTC day", time.Date(2024, 3, 10, 1, 0, 0, 0, east), "2024-03-09"},
		{"23:30 at +02:00 stays", time.Date(2024, 3, 10, 23, 30, 0, 0, east), "2024-03-10"},
		{"year boundary", time.Date(2024, 12, 31, 23, 0, 0, 0, west), "2025-01-01"},
		{"leap day", time.Date(2024, 2, 29, 22, 30, 0, 0, west), "2024-03-01"},
	}
	for _, tt := range tests {
		l := AppLaunched{At: tt.at}
		if got := l.Day(); got != tt.want {
			t.Errorf("%s: Day() of %v = %s, want %s", tt.name, tt.at, got, tt.want)
		}
	}
}
