package mongo_test

import (
	"context"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"

	evmongo "github.com/evflow/evflow/infra/mongo"
)

func TestCommandCounterConcurrent(t *testing.T) {
	var c evmongo.CommandCounter
	if got := c.Snapshot(); got == nil || len(got) != 0 {
		t.Errorf("zero Snapshot = %v, want empty", got)
	}
	m := c.Monitor()
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := range each {
				name := "find"
				if i%2 == 1 {
					name = "update"
				}
				m.Started(context.Background(), &event.CommandStartedEvent{CommandName: name})
				_ = c.Count(name)
			}
		})
	}
	wg.Wait()
	if got := c.Count("find"); got != goroutines*each/2 {
		t.Errorf("Count(find) = %d, want %d", got, goroutines*each/2)
	}
	if got := c.Total(); got != goroutines*each {
		t.Errorf("Total() = %d, want %d", got, goroutines*each)
	}
	if got := c.Total("update", "insert"); got != goroutines*each/2 {
		t.Errorf("Total(update, insert) = %d, want %d", got, goroutines*each/2)
	}
	c.Reset()
	if got := c.Total(); got != 0 {
		t.Errorf("Total after Reset = %d", got)
	}
}

func TestCommandCounterCountsRoundTrips(t *testing.T) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, evmongo.Config{})
	e.counter.Reset()
	if _, err := s.LoadApps(ctx, []string{"a", "b", "c"}); err != nil {
		t.Fatalf("LoadApps: %v", err)
	}
	if _, err := s.SaveApps(ctx, appWrites(0, newApp("a", 1), newApp("b", 1), newApp("c", 1))); err != nil {
		t.Fatalf("SaveApps: %v", err)
	}
	if got := e.counter.Snapshot(); got["find"] != 1 || got["insert"] != 1 || len(got) != 2 {
		t.Errorf("commands = %v, want one find and one insert", got)
	}
}
