package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// AppReader reads the current state of an app from the read model.
type AppReader interface {
	// App returns the app's state and true, or false when it does not exist.
	App(ctx context.Context, id string) (projections.App, bool, error)
}

// Appender appends events to the stream.
type Appender interface {
	// Append appends envs in order. expected, when non-nil, is the stream
	// position of the aggregate's last event the decision was based on (0:
	// no event yet); if the aggregate has moved on, Append fails with an
	// error wrapping [events.ErrConflict] and appends nothing. It returns
	// the positions assigned, in order.
	Append(ctx context.Context, expected *uint64, envs ...events.Envelope) ([]uint64, error)
}

// Heads reads the stream position of an aggregate's last event (0: none).
type Heads interface {
	Head(ctx context.Context, aggregateType, id string) (uint64, error)
}

// Backoff of the wait for the read model after a conflict.
const (
	minConflictBackoff = 5 * time.Millisecond
	maxConflictBackoff = 100 * time.Millisecond
)

// Result is the outcome of an accepted command.
type Result struct {
	// CommandID is the command's id, generated when the command had none.
	// It is set even when Handle fails.
	CommandID string `json:"command_id"`
	// EventID is the id of the event the command emitted (the command id).
	EventID string `json:"event_id,omitempty"`
	// Type is the type of the event.
	Type string `json:"type,omitempty"`
	// Position is the event's stream position; 0 when Duplicate.
	Position uint64 `json:"position"`
	// Duplicate reports that the command had already been applied (a
	// retry): nothing was appended this time.
	Duplicate bool `json:"duplicate"`
}

// Service handles commands of the app aggregate and ingests launches. It is
// safe for concurrent use; it holds no state besides its dependencies.
type Service struct {
	apps AppReader
	log  Appender
	cfg  Config
}

// NewService returns a service deciding against apps and appending to log.
// It panics when a dependency is nil or cfg is invalid: both are wiring
// bugs (check cfg with [Config.Validate] first to report them as errors).
func NewService(apps AppReader, log Appender, cfg Config) *Service {
	if apps == nil || log == nil {
		panic("handlers: NewService needs an AppReader and an Appender")
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg.setDefaults()
	return &Service{apps: apps, log: log, cfg: cfg}
}

// Handle validates cmd, decides it against the app's current state and
// appends its event, conditional on the app's position in the read model.
//
// A command whose id the app already records as a cause is a retry of an
// applied command: Handle answers Duplicate without deciding again. When the
// append conflicts, the read model is behind the stream: Handle re-reads the
// app until its position moves, then decides again, for up to
// Config.ConflictTimeout, after which it fails with an error wrapping
// [events.ErrConflict].
//
// Errors wrap a *[ValidationError], [ErrNotFound], [ErrForbidden], a
// *[RuleError], [events.ErrConflict], or a read or append failure. Nothing
// is appended when Handle fails.
func (s *Service) Handle(ctx context.Context, cmd Command) (Result, error) {
	if cmd.ID == "" {
		cmd.ID = uuid.NewString()
	}
	res := Result{CommandID: cmd.ID}
	fail := func(err error) (Result, error) {
		return res, fmt.Errorf("%s (command %s): %w", cmd.Type, cmd.ID, err)
	}
	if err := cmd.Validate(); err != nil {
		return fail(err)
	}
	app, err := s.readCaughtUp(ctx, cmd.AppID)
	if err != nil {
		return fail(err)
	}
	var deadline time.Time
	for {
		// Only the owner's retries are recognised: another tenant reusing
		// one of its command ids is refused by Decide, not told the id
		// was applied.
		if app.HasCause(cmd.ID) && app.Tenant == cmd.Tenant {
			typ, _ := EventType(cmd.Type)
			return Result{CommandID: cmd.ID, EventID: cmd.ID, Type: typ, Duplicate: true}, nil
		}
		env, err := Decide(app, cmd, s.cfg.Now())
		if err != nil {
			return fail(err)
		}
		expected := uint64(app.Position)
		pos, err := s.log.Append(ctx, &expected, env)
		if err == nil {
			if len(pos) != 1 {
				return fail(fmt.Errorf("append returned %d positions for one event", len(pos)))
			}
			return Result{CommandID: cmd.ID, EventID: env.ID, Type: env.Type, Position: pos[0]}, nil
		}
		if !errors.Is(err, events.ErrConflict) {
			return fail(fmt.Errorf("append: %w", err))
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(s.cfg.ConflictTimeout)
		}
		if app, err = s.awaitChange(ctx, cmd.AppID, app.Position, deadline); err != nil {
			return fail(err)
		}
	}
}

// read returns the app's state, the zero App when it does not exist.
func (s *Service) read(ctx context.Context, id string) (projections.App, error) {
	app, ok, err := s.apps.App(ctx, id)
	if err != nil {
		return projections.App{}, fmt.Errorf("read app %q: %w", id, err)
	}
	if !ok {
		return projections.App{}, nil
	}
	return app, nil
}

// readCaughtUp returns the app's state once the read model has applied the
// aggregate's last event on the stream (when Config.Heads is set), so a
// command sent right after another one on the same app sees its effect.
func (s *Service) readCaughtUp(ctx context.Context, id string) (projections.App, error) {
	app, err := s.read(ctx, id)
	if err != nil || s.cfg.Heads == nil {
		return app, err
	}
	head, err := s.cfg.Heads.Head(ctx, events.AggregateApp, id)
	if err != nil {
		return projections.App{}, fmt.Errorf("head of app %q: %w", id, err)
	}
	deadline := time.Now().Add(s.cfg.ConflictTimeout)
	for uint64(app.Position) < head {
		if app, err = s.awaitChange(ctx, id, app.Position, deadline); err != nil {
			return projections.App{}, err
		}
	}
	return app, nil
}

// awaitChange polls the read model, backing off from 5ms to 100ms, until
// the app's position is no longer prev, and returns the new state. At the
// deadline it fails with an error wrapping [events.ErrConflict].
func (s *Service) awaitChange(ctx context.Context, id string, prev int64, deadline time.Time) (projections.App, error) {
	wait := minConflictBackoff
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return projections.App{}, fmt.Errorf("app %q changed concurrently and the read model stayed at position %d for %s: %w",
				id, prev, s.cfg.ConflictTimeout, events.ErrConflict)
		}
		t := time.NewTimer(min(wait, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return projections.App{}, fmt.Errorf("wait for app %q to move past position %d: %w", id, prev, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, maxConflictBackoff)
		app, err := s.read(ctx, id)
		if err != nil {
			return projections.App{}, err
		}
		if app.Position != prev {
			return app, nil
		}
	}
}
