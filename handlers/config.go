package handlers

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of [Config].
const (
	// DefaultConflictTimeout is how long Handle waits for the read model to
	// catch up with the stream after a conflicting append.
	DefaultConflictTimeout = 5 * time.Second
	// DefaultMaxLaunchBatch is the largest batch Ingest accepts.
	DefaultMaxLaunchBatch = 1000
)

// Config configures a [Service]. Zero values mean the defaults.
type Config struct {
	// ConflictTimeout bounds how long Handle keeps re-reading the app and
	// re-deciding after appends that conflict (default [DefaultConflictTimeout]).
	ConflictTimeout time.Duration
	// MaxLaunchBatch is the most launches one Ingest call accepts
	// (default [DefaultMaxLaunchBatch]).
	MaxLaunchBatch int
	// Heads, when set, gives read-your-writes: before deciding, Handle waits
	// (up to ConflictTimeout) until the read model has applied the app's
	// last event on the stream, so a command sent right after another one
	// on the same app decides against its effect rather than failing.
	Heads Heads
	// Now is the clock events are stamped with (default time.Now). It is not
	// used for the conflict timeout, which runs on the real clock.
	Now func() time.Time
}

// setDefaults fills zero fields with their defaults.
func (c *Config) setDefaults() {
	if c.ConflictTimeout == 0 {
		c.ConflictTimeout = DefaultConflictTimeout
	}
	if c.MaxLaunchBatch == 0 {
		c.MaxLaunchBatch = DefaultMaxLaunchBatch
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every invalid field, joined. Zero values are valid: they
// stand for the defaults.
func (c Config) Validate() error {
	var errs []error
	if c.ConflictTimeout < 0 {
		errs = append(errs, fmt.Errorf("handlers config: ConflictTimeout must not be negative, got %s", c.ConflictTimeout))
	}
	if c.MaxLaunchBatch < 0 {
		errs = append(errs, fmt.Errorf("handlers config: MaxLaunchBatch must not be negative, got %d", c.MaxLaunchBatch))
	}
	return errors.Join(errs...)
}
