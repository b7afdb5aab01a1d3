package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

// TestServerDown: with the server gone every call returns an error, none is
// swallowed, and promptly (reads are retried a few times, not until the
// context ends); once a new (empty, script-less) server listens on the address,
// the same client and store work again.
func TestServerDown(t *testing.T) {
	r := testenv.StartRedis(t)
	s := newStore(t, connect(t, r.Addr), "")
	rs, gs := []projections.ReleaseChange{rel("a", "1.0", 2)}, []projections.LaunchGroup{group("a", day1, 1, "x", "y")}
	if err := s.ApplyHot(timeout(t), rs, gs); err != nil {
		t.Fatal(err)
	}

	r.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls := map[string]func() error{
		"ApplyHot": func() error { return s.ApplyHot(ctx, rs, gs) },
		"SaveCheckpoint": func() error {
			return s.SaveCheckpoint(ctx, projections.RedisName, 0, 2)
		},
		"Checkpoint": func() error { _, err := s.Checkpoint(ctx, projections.RedisName, 0); return err },
		"Release":    func() error { _, _, _, err := s.Release(ctx, "a"); return err },
		"Launches":   func() error { _, _, err := s.Launches(ctx, "a", day1); return err },
		"Top":        func() error { _, err := s.Top(ctx, day1, 10); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s with the server stopped took %v: retried too long", name, took)
		}
		if err == nil {
			t.Errorf("%s with the server stopped: no error", name)
			continue
		}
		if name == "ApplyHot" && !strings.HasPrefix(err.Error(), "apply hot batch: ") {
			t.Errorf("ApplyHot error %q lacks its context", err)
		}
	}

	r.Restart()
	testenv.WaitFor(t, 15*time.Second, func() error { return s.ApplyHot(timeout(t), rs, gs) })
	if err := s.SaveCheckpoint(timeout(t), projections.RedisName, 0, 2); err != nil {
		t.Fatal(err)
	}
	runHotCase(t, s, hotCase{
		releases: []releaseWant{{"a", "1.0", 2, true}},
		launches: []launchWant{{"a", day1, 2, 2}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 2}}},
	})
}
