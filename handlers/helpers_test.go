package handlers

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// Test fixtures: the owning organization, another one, and the app.
const (
	owner = "org-1"
	other = "org-2"
	appID = "app-1"
)

// testNow is the decision time; deliberately not UTC, to check that events
// are stamped in UTC.
func testNow() time.Time {
	return time.Date(2025, 3, 1, 18, 30, 0, 0, time.FixedZone("CST", 8*3600))
}

func cmdCreate() Command {
	return Command{Type: CmdCreate, Tenant: owner, AppID: appID, Name: "Weather"}
}
func cmdSubmit(v string) Command {
	return Command{Type: CmdSubmitVersion, Tenant: owner, AppID: appID, Version: v, Notes: "notes " + v}
}
func cmdApprove(v string) Command {
	return Command{Type: CmdApproveVersion, Tenant: owner, AppID: appID, Version: v}
}
func cmdReject(v, reason string) Command {
	return Command{Type: CmdRejectVersion, Tenant: owner, AppID: appID, Version: v, Reason: reason}
}
func cmdPublish(v string) Command {
	return Command{Type: CmdPublishRelease, Tenant: owner, AppID: appID, Version: v}
}
func cmdRollback() Command { return Command{Type: CmdRollbackRelease, Tenant: owner, AppID: appID} }
func cmdGrant(org string) Command {
	return Command{Type: CmdGrant, Tenant: owner, AppID: appID, Org: org}
}
func cmdRevoke(org string) Command {
	return Command{Type: CmdRevoke, Tenant: owner, AppID: appID, Org: org}
}

// released returns the commands that create the app and publish versions
// vs in turn (each submitted, approved and published).
func released(vs ...string) []Command {
	cmds := []Command{cmdCreate()}
	for _, v := range vs {
		cmds = append(cmds, cmdSubmit(v), cmdApprove(v), cmdPublish(v))
	}
	return cmds
}

// with returns cmd with fn applied to it.
func with(cmd Command, fn func(*Command)) Command {
	fn(&cmd)
	return cmd
}

// given builds an app's state by deciding cmds in turn and folding their
// events through projections.App.Apply. Positions go up by 2, as if usage
// events were interleaved on the stream. Commands without an id get one.
func given(t testing.TB, cmds ...Command) projections.App {
	t.Helper()
	var app projections.App
	for i, cmd := range cmds {
		if cmd.ID == "" {
			cmd.ID = fmt.Sprintf("given-%d", i)
		}
		env, err := Decide(app, cmd, testNow())
		if err != nil {
			t.Fatalf("given[%d] %s: %v", i, cmd.Type, err)
		}
		apply(t, &app, env, uint64(app.Position)+2)
	}
	return app
}

// apply folds env into app at stream position pos and fails the test if
// the event changed nothing.
func apply(t testing.TB, app *projections.App, env events.Envelope, pos uint64) {
	t.Helper()
	payload, err := events.Domain().Decode(env)
	if err != nil {
		t.Fatalf("decode %s: %v", env.Type, err)
	}
	e := projections.Event{Record: events.Record{Envelope: env, Position: pos}, Payload: payload}
	if !app.Apply(e) {
		t.Fatalf("apply %s at %d changed nothing", env.Type, pos)
	}
}

// decideCase is one table case of Decide: the commands that build the
// state, the command, and either the event data it must emit or the
// error it must fail with (a validation field, a rule, or a sentinel).
type decideCase struct {
	name  string
	given []Command
	cmd   Command
	want  any    // decoded data of the emitted event
	field string // ValidationError.Field
	rule  string // RuleError.Rule
	err   error  // sentinel, matched with errors.Is
}

// runDecide runs each case against a fresh state built from its commands.
func runDecide(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := given(t, tc.given...)
			cmd := tc.cmd
			if cmd.ID == "" {
				cmd.ID = "cmd-under-test"
			}
			env, err := Decide(app, cmd, testNow())
			checkDecideErr(t, err, tc)
			if err == nil {
				checkEnvelope(t, env, cmd, owner, tc.want)
			}
		})
	}
}

// checkDecideErr asserts the error a case expects (or none).
func checkDecideErr(t *testing.T, err error, tc decideCase) {
	t.Helper()
	var verr *ValidationError
	var rerr *RuleError
	switch {
	case tc.field != "":
		if !errors.As(err, &verr) || verr.Field != tc.field {
			t.Fatalf("err = %v, want a ValidationError of field %q", err, tc.field)
		}
	case tc.rule != "":
		if !errors.As(err, &rerr) || rerr.Rule != tc.rule {
			t.Fatalf("err = %v, want a RuleError of rule %q", err, tc.rule)
		}
	case tc.err != nil:
		if !errors.Is(err, tc.err) {
			t.Fatalf("err = %v, want %v", err, tc.err)
		}
	case err != nil:
		t.Fatalf("unexpected error: %v", err)
	}
	if err != nil && err.Error() == "" {
		t.Fatal("error has an empty message")
	}
}

// checkEnvelope asserts the metadata of cmd's event and its decoded data.
func checkEnvelope(t *testing.T, env events.Envelope, cmd Command, tenant string, want any) {
	t.Helper()
	if err := env.Validate(); err != nil {
		t.Fatalf("envelope invalid: %v", err)
	}
	wantType, _ := EventType(cmd.Type)
	got := [...]string{env.ID, env.CausationID, env.CorrelationID, env.Type, env.Tenant, env.AggregateType, env.AggregateID}
	exp := [...]string{cmd.ID, cmd.ID, cmd.ID, wantType, tenant, events.AggregateApp, cmd.AppID}
	if got != exp {
		t.Errorf("id, causation, correlation, type, tenant, aggregate type, aggregate id = %q, want %q", got, exp)
	}
	if env.SchemaVersion != 1 {
		t.Errorf("schema version = %d, want 1", env.SchemaVersion)
	}
	if !env.OccurredAt.Equal(testNow()) || env.OccurredAt.Location() != time.UTC {
		t.Errorf("occurred at = %v, want %v in UTC", env.OccurredAt, testNow().UTC())
	}
	data, err := events.Domain().Decode(env)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(data, want) {
		t.Errorf("data = %+v, want %+v", data, want)
	}
}
