package handlers

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// memLog is an in-memory stream with a read model that may lag behind it.
// It exists only to test the Service's orchestration (conflict retry,
// duplicate short-circuit, nothing appended on error); the real bus and
// stores are tested in infra.
type memLog struct {
	t  testing.TB
	mu sync.Mutex
	// stream holds every appended event; position = index + 1.
	stream []events.Envelope
	// visible is how many stream events the read model has applied.
	visible int
	// lag keeps appended events out of the read model until catchUpAt.
	lag bool
	// catchUpAt, when > 0, makes the read model catch up at that App call.
	catchUpAt int
	reads     int
	appends   int // Append calls
	conflicts int // Append calls that failed with ErrConflict
	// expected records the expected position of each Append call.
	expected []*uint64
	// readErr and appendErr, when set, fail App and Append.
	readErr, appendErr error
}

func newMemLog(t testing.TB) *memLog { return &memLog{t: t} }

// App implements AppReader by folding the visible events.
func (m *memLog) App(_ context.Context, id string) (projections.App, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.readErr != nil {
		return projections.App{}, false, m.readErr
	}
	if m.catchUpAt > 0 && m.reads >= m.catchUpAt {
		m.visible = len(m.stream)
	}
	app := m.fold(id)
	return app, app.Exists(), nil
}

// fold folds the visible events of app id.
func (m *memLog) fold(id string) projections.App {
	var app projections.App
	for i, env := range m.stream[:m.visible] {
		if env.AggregateType == events.AggregateApp && env.AggregateID == id {
			apply(m.t, &app, env, uint64(i+1))
		}
	}
	return app
}

// Append implements Appender with an expected-position check per aggregate.
func (m *memLog) Append(_ context.Context, expected *uint64, envs ...events.Envelope) ([]uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appends++
	m.expected = append(m.expected, expected)
	if m.appendErr != nil {
		return nil, m.appendErr
	}
	if expected != nil {
		if last := m.lastOf(envs[0].AggregateType, envs[0].AggregateID); last != *expected {
			m.conflicts++
			return nil, fmt.Errorf("append %s: at %d, expected %d: %w", envs[0].AggregateID, last, *expected, events.ErrConflict)
		}
	}
	var pos []uint64
	for _, env := range envs {
		if err := env.Validate(); err != nil {
			return nil, err
		}
		m.stream = append(m.stream, env)
		pos = append(pos, uint64(len(m.stream)))
	}
	if !m.lag {
		m.visible = len(m.stream)
	}
	return pos, nil
}

func (m *memLog) lastOf(aggType, id string) uint64 {
	for i := len(m.stream) - 1; i >= 0; i-- {
		if m.stream[i].AggregateType == aggType && m.stream[i].AggregateID == id {
			return uint64(i + 1)
		}
	}
	return 0
}

// seed appends the events of cmds as another replica would. While the
// read model lags, only one event per app can be seeded.
func (m *memLog) seed(cmds ...Command) {
	m.t.Helper()
	for i, cmd := range cmds {
		if cmd.ID == "" {
			cmd.ID = fmt.Sprintf("seed-%d-%d", len(m.stream), i)
		}
		m.mu.Lock()
		app := m.fold(cmd.AppID)
		m.mu.Unlock()
		env, err := Decide(app, cmd, testNow())
		if err != nil {
			m.t.Fatalf("seed %s: %v", cmd.Type, err)
		}
		exp := uint64(app.Position)
		if _, err := m.Append(context.Background(), &exp, env); err != nil {
			m.t.Fatalf("seed %s: %v", cmd.Type, err)
		}
	}
}

// lagBehind hides later appends from the read model until its catchUp-th
// read from now (never when 0).
func (m *memLog) lagBehind(catchUp int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lag, m.reads, m.catchUpAt = true, 0, catchUp
}

// counts returns the stream length and the number of Append calls.
func (m *memLog) counts() (events, appends int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.stream), m.appends
}
