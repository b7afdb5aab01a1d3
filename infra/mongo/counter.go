package mongo

import (
	"context"
	"maps"
	"sync"

	"go.mongodb.org/mongo-driver/v2/event"
)

// CommandCounter counts the commands a client starts, by command name
// ("find", "insert", "update", …): one started command is one round trip.
// Attach it with options.Client().SetMonitor(c.Monitor()). It is safe for
// concurrent use; the zero value is ready.
type CommandCounter struct {
	mu     sync.Mutex
	counts map[string]int64
}

// Monitor returns a command monitor that counts into c.
func (c *CommandCounter) Monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) { c.add(e.CommandName) },
	}
}

func (c *CommandCounter) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int64{}
	}
	c.counts[name]++
}

// Count returns how many commands named name have started.
func (c *CommandCounter) Count(name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[name]
}

// Total returns how many commands of the given names have started, or of
// any name when none are given.
func (c *CommandCounter) Total(names ...string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	if len(names) == 0 {
		for _, v := range c.counts {
			n += v
		}
		return n
	}
	for _, name := range names {
		n += c.counts[name]
	}
	return n
}

// Snapshot returns a copy of the counts by command name (never nil).
func (c *CommandCounter) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.counts))
	maps.Copy(out, c.counts)
	return out
}

// Reset sets every count to zero.
func (c *CommandCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.counts)
}
