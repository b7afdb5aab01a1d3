package handlers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
)

// The tests in this file exercise the Service's orchestration only, over
// the in-memory memLog; the real bus and stores are tested in infra.

func newTestService(m *memLog, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = testNow
	}
	return NewService(m, m, cfg)
}

func TestServiceOrchestration_AppendsDecidedEvent(t *testing.T) {
	m := newMemLog(t)
	s := newTestService(m, Config{})
	ctx := context.Background()
	res, err := s.Handle(ctx, with(cmdCreate(), func(c *Command) { c.ID = "c-1" }))
	if err != nil {
		t.Fatal(err)
	}
	want := Result{CommandID: "c-1", EventID: "c-1", Type: events.TypeAppCreated, Position: 1}
	if res != want {
		t.Errorf("create: %+v, want %+v", res, want)
	}
	res, err = s.Handle(ctx, cmdSubmit("1.0")) // no id: one is generated
	if err != nil {
		t.Fatal(err)
	}
	if !events.ValidID(res.CommandID) || res.EventID != res.CommandID || res.Position != 2 || res.Duplicate {
		t.Errorf("submit: %+v", res)
	}
	if n, _ := m.counts(); n != 2 {
		t.Errorf("stream has %d events, want 2", n)
	}
	if e := m.expected[1]; e == nil || *e != 1 {
		t.Errorf("submit appended with expected %v, want 1", e)
	}
}

func TestServiceOrchestration_DuplicateCauseShortCircuits(t *testing.T) {
	m := newMemLog(t)
	m.seed(cmdCreate(), with(cmdSubmit("1.0"), func(c *Command) { c.ID = "c-submit" }))
	s := newTestService(m, Config{})
	_, appendsBefore := m.counts()
	// A retry of an applied command: deciding again would break a rule
	// (version_exists), but the cause is recorded, so it is a success.
	res, err := s.Handle(context.Background(), with(cmdSubmit("1.0"), func(c *Command) { c.ID = "c-submit" }))
	if err != nil {
		t.Fatal(err)
	}
	want := Result{CommandID: "c-submit", EventID: "c-submit", Type: events.TypeVersionSubmitted, Duplicate: true}
	if res != want {
		t.Errorf("got %+v, want %+v", res, want)
	}
	if _, appends := m.counts(); appends != appendsBefore {
		t.Errorf("duplicate called Append")
	}
}

// TestServiceOrchestration_OtherTenantsIDIsNotADuplicate: another tenant
// reusing an id the app's owner used is refused, not told it was applied.
func TestServiceOrchestration_OtherTenantsIDIsNotADuplicate(t *testing.T) {
	m := newMemLog(t)
	m.seed(cmdCreate(), with(cmdSubmit("1.0"), func(c *Command) { c.ID = "c-submit" }))
	s := newTestService(m, Config{})
	_, err := s.Handle(context.Background(), with(cmdSubmit("1.0"), func(c *Command) { c.ID = "c-submit"; c.Tenant = "intruder" }))
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("got %v, want ErrForbidden", err)
	}
}

func TestServiceOrchestration_NothingAppendedOnError(t *testing.T) {
	cases := []decideCase{
		{name: "validation", cmd: cmdSubmit("1 0"), field: "version"},
		{name: "unknown type", cmd: Command{Type: "app.delete", Tenant: owner, AppID: appID}, field: "type"},
		{name: "not found", cmd: with(cmdSubmit("1.0"), func(c *Command) { c.AppID = "app-2" }), err: ErrNotFound},
		{name: "forbidden", cmd: with(cmdSubmit("1.0"), func(c *Command) { c.Tenant = other }), err: ErrForbidden},
		{name: "rule", cmd: cmdPublish("1.0"), rule: RuleVersionNotApproved},
		{name: "rule on create", cmd: cmdCreate(), rule: RuleAppExists},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemLog(t)
			m.seed(cmdCreate(), cmdSubmit("1.0"))
			n, appends := m.counts()
			res, err := newTestService(m, Config{}).Handle(context.Background(), tc.cmd)
			checkDecideErr(t, err, tc)
			if n2, appends2 := m.counts(); n2 != n || appends2 != appends {
				t.Errorf("stream %d -> %d events, %d -> %d Append calls", n, n2, appends, appends2)
			}
			if res.CommandID == "" || res.Position != 0 {
				t.Errorf("result %+v: want the command id and no position", res)
			}
		})
	}
}

func TestServiceOrchestration_ConflictRedecidesOnFreshState(t *testing.T) {
	m := newMemLog(t)
	m.seed(cmdCreate(), cmdSubmit("1.0"))
	m.lagBehind(2) // Handle's first read is stale; the next catches up
	m.seed(cmdApprove("1.0"))
	res, err := newTestService(m, Config{}).Handle(context.Background(), cmdSubmit("1.1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Position != 4 || m.conflicts != 1 {
		t.Errorf("position %d after %d conflicts, want 4 after 1", res.Position, m.conflicts)
	}
	if e := m.expected[len(m.expected)-1]; *e != 3 {
		t.Errorf("retry expected position %d, want 3", *e)
	}
}

func TestServiceOrchestration_ConflictThenRuleError(t *testing.T) {
	m := newMemLog(t)
	m.seed(cmdCreate(), cmdSubmit("1.0"))
	m.lagBehind(2)
	m.seed(cmdApprove("1.0")) // another replica approved first
	n, _ := m.counts()
	_, err := newTestService(m, Config{}).Handle(context.Background(), cmdApprove("1.0"))
	checkDecideErr(t, err, decideCase{rule: RuleVersionNotSubmitted})
	if n2, _ := m.counts(); n2 != n {
		t.Errorf("stream grew from %d to %d", n, n2)
	}
}

func TestServiceOrchestration_ConflictOnCreate(t *testing.T) {
	m := newMemLog(t)
	m.lagBehind(2)
	m.seed(cmdCreate())
	_, err := newTestService(m, Config{}).Handle(context.Background(), cmdCreate())
	checkDecideErr(t, err, decideCase{rule: RuleAppExists})
}

func TestServiceOrchestration_ConflictWithOwnEarlierAttempt(t *testing.T) {
	m := newMemLog(t)
	m.seed(cmdCreate())
	m.lagBehind(2)
	retry := with(cmdSubmit("1.0"), func(c *Command) { c.ID = "c-retry" })
	m.seed(retry) // the first attempt got stored, its answer was lost
	res, err := newTestService(m, Config{}).Handle(context.Background(), retry)
	if err != nil || !res.Duplicate {
		t.Fatalf("got %+v, %v; want a duplicate", res, err)
	}
}

func TestServiceOrchestration_ConflictTimeout(t *testing.T) {
	m := newMemLog(t)
	m.seed(cmdCreate())
	m.lagBehind(0) // the read model never catches up
	m.seed(cmdSubmit("1.0"))
	n, _ := m.counts()
	const timeout = 60 * time.Millisecond
	start := time.Now()
	_, err := newTestService(m, Config{ConflictTimeout: timeout}).Handle(context.Background(), cmdSubmit("1.1"))
	if took := time.Since(start); took < timeout || took > timeout+time.Second {
		t.Errorf("gave up after %s, want about %s", took, timeout)
	}
	if !errors.Is(err, events.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if n2, _ := m.counts(); n2 != n || m.conflicts != 1 {
		t.Errorf("stream %d -> %d events after %d conflicts", n, n2, m.conflicts)
	}
}

func TestServiceOrchestration_ContextEndsConflictWait(t *testing.T) {
	m := newMemLog(t)
	m.seed(cmdCreate())
	m.lagBehind(0)
	m.seed(cmdSubmit("1.0"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newTestService(m, Config{ConflictTimeout: time.Minute}).Handle(ctx, cmdSubmit("1.1"))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %s, want the context's deadline", err, time.Since(start))
	}
}

func TestServiceOrchestration_DependencyErrorsAreWrapped(t *testing.T) {
	boom := errors.New("boom")
	m := newMemLog(t)
	m.readErr = boom
	if _, err := newTestService(m, Config{}).Handle(context.Background(), cmdCreate()); !errors.Is(err, boom) ||
		!strings.Contains(err.Error(), "read app") {
		t.Errorf("read failure: %v", err)
	}
	m = newMemLog(t)
	m.appendErr = boom
	if _, err := newTestService(m, Config{}).Handle(context.Background(), cmdCreate()); !errors.Is(err, boom) || m.appends != 1 {
		t.Errorf("append failure: %v after %d appends, want boom after 1 (no retry)", err, m.appends)
	}
}

func TestConfig(t *testing.T) {
	err := Config{ConflictTimeout: -1, MaxLaunchBatch: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "ConflictTimeout") || !strings.Contains(err.Error(), "MaxLaunchBatch") {
		t.Errorf("Validate() = %v, want both fields named", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	var c Config
	c.setDefaults()
	if c.ConflictTimeout != DefaultConflictTimeout || c.MaxLaunchBatch != DefaultMaxLaunchBatch || c.Now == nil {
		t.Errorf("defaults: %+v", c)
	}
	for name, fn := range map[string]func(){
		"nil reader":     func() { NewService(nil, newMemLog(t), Config{}) },
		"invalid config": func() { NewService(newMemLog(t), newMemLog(t), Config{MaxLaunchBatch: -1}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewService did not panic", name)
				}
			}()
			fn()
		}()
	}
}
