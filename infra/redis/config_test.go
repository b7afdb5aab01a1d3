package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/evflow/evflow/projections"
)

func TestNewValidates(t *testing.T) {
	addr, stop, err := StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	client := connect(t, addr)
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{"", true}, {"ev", true}, {"ev-shadow.2:x", true},
		{"e{v}", false}, {"ev x", false}, {strings.Repeat("p", 65), false},
	} {
		_, err := New(client, Config{Prefix: tc.prefix})
		if (err == nil) != tc.ok {
			t.Errorf("New with prefix %q: err = %v, want ok=%v", tc.prefix, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "Prefix") {
			t.Errorf("error %q does not name the field", err)
		}
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Error("New with nil client: no error")
	}
}

func TestConnectValidates(t *testing.T) {
	for _, cfg := range []ClientConfig{{}, {Addr: "nohost"}, {Addr: "127.0.0.1:1", ConnWriteTimeout: -1}} {
		if _, err := Connect(context.Background(), cfg); err == nil {
			t.Errorf("Connect(%+v): no error", cfg)
		}
	}
}

func TestStartEmbeddedCloseTwice(t *testing.T) {
	_, stop, err := StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop()
}

// TestApplyHotRejectsBadInput: malformed input fails before anything is written.
func TestApplyHotRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name     string
		releases []projections.ReleaseChange
		launches []projections.LaunchGroup
	}{
		{"devices missing", nil, []projections.LaunchGroup{{AppID: "a", Day: day1, Positions: []uint64{1, 2}, Devices: []string{"x"}}}},
		{"no app id", nil, []projections.LaunchGroup{group("", day1, 1, "x")}},
		{"no day", nil, []projections.LaunchGroup{group("a", "", 1, "x")}},
		{"release without app", []projections.ReleaseChange{rel("", "1.0", 1)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counter := &countingClient{}
			s := newStore(t, counter, "")
			if err := s.ApplyHot(context.Background(), tc.releases, tc.launches); err == nil {
				t.Error("no error")
			}
			if counter.do.Load()+counter.doMulti.Load() != 0 {
				t.Error("sent commands")
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	delay := retryDelay(3)
	for attempts, want := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 40 * time.Millisecond, 4: -1} {
		if got := delay(attempts, rueidis.Completed{}, nil); got != want {
			t.Errorf("delay after %d attempts = %v, want %v", attempts, got, want)
		}
	}
	if got := retryDelay(100)(60, rueidis.Completed{}, nil); got != maxRetryDelay {
		t.Errorf("delay after 60 attempts = %v, want the cap %v", got, maxRetryDelay)
	}
}
