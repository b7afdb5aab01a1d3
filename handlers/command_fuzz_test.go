package handlers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// commandFields are the JSON names of Command's fields: a ValidationError
// names one of them.
var commandFields = map[string]bool{
	"id": true, "type": true, "tenant": true, "app_id": true, "name": true,
	"version": true, "notes": true, "reason": true, "org": true,
}

var rules = map[string]bool{
	RuleAppExists: true, RuleVersionExists: true, RuleVersionNotSubmitted: true, RuleVersionNotApproved: true,
	RuleAlreadyReleased: true, RuleNoRelease: true, RuleAlreadyGranted: true, RuleNotGranted: true, RuleGrantToOwner: true,
}

// FuzzCommand decides an arbitrary command against one of a few states of
// its app, with Decide and through Service.Handle over the in-memory log.
// Neither may panic. A command Validate refuses is refused by both with
// that *ValidationError, which names a field, and nothing is appended. A
// valid command either breaks a rule (ErrNotFound, ErrForbidden, a
// RuleError with a known rule: nothing appended) or emits one event that
// validates, survives events.Marshal and Unmarshal, decodes, carries every
// field its command gave, and changes the app when folded.
//
// state picks the app's history (see fuzzState); its bit 3 makes another
// organization the owner.
func FuzzCommand(f *testing.F) {
	add := func(state uint8, c Command) {
		f.Add(state, c.Type, c.ID, c.Tenant, c.AppID, c.Name, c.Version, c.Notes, c.Reason, c.Org)
	}
	id := func(c Command) Command { c.ID = "cmd-1"; return c }
	// One accepted command of each type, in a state that allows it.
	add(0, id(cmdCreate()))
	add(1, id(cmdSubmit("1.0.0")))
	add(2, id(cmdApprove("1.0.0")))
	add(2, id(cmdReject("1.0.0", "crashes on start")))
	add(3, id(cmdPublish("1.0.0")))
	add(6, id(cmdRollback()))
	add(1, id(cmdGrant(other)))
	add(7, id(cmdRevoke(other)))
	// Rules broken, and a tenant that does not own the app.
	add(1, id(cmdCreate()))
	add(2, id(cmdSubmit("1.0.0")))
	add(4, id(cmdApprove("1.0.0")))
	add(2, id(cmdPublish("1.0.0")))
	add(5, id(cmdPublish("1.0.0")))
	add(1, id(cmdRollback()))
	add(1, id(cmdGrant(owner)))
	add(7, id(cmdGrant(other)))
	add(1, id(cmdRevoke(other)))
	add(0, id(cmdSubmit("1.0.0")))
	add(8|5, id(cmdRollback()))
	// Fields at and past their limits, blank, or not UTF-8.
	add(0, Command{Type: CmdCreate})
	add(0, Command{Type: "app.delete", ID: "cmd-1", Tenant: owner, AppID: appID})
	add(0, with(id(cmdCreate()), func(c *Command) { c.Name = strings.Repeat("é", MaxNameLen) }))
	add(0, with(id(cmdCreate()), func(c *Command) { c.Name = strings.Repeat("n", MaxNameLen+1) }))
	add(0, with(id(cmdCreate()), func(c *Command) { c.Name = " \t\n" }))
	add(0, with(id(cmdCreate()), func(c *Command) { c.Name = "\xff" }))
	add(0, with(id(cmdCreate()), func(c *Command) { c.Name = "\u0000<script>\u2028" }))
	add(1, with(id(cmdSubmit("1.0.0")), func(c *Command) { c.Notes = "\xc3\x28" }))
	add(1, with(id(cmdSubmit("1.0.0")), func(c *Command) { c.Version = strings.Repeat("9", MaxVersionLen+1) }))
	add(1, with(id(cmdSubmit("1.0.0")), func(c *Command) { c.Version = "1.0.0 beta" }))
	add(2, with(id(cmdReject("1.0.0", "")), func(c *Command) { c.Reason = "\u3000" }))
	add(1, with(id(cmdGrant("org.2")), func(c *Command) {}))
	add(1, with(id(cmdCreate()), func(c *Command) { c.ID = strings.Repeat("i", 129) }))
	add(1, with(id(cmdCreate()), func(c *Command) { c.AppID = "app-1\n" }))
	add(1, with(id(cmdCreate()), func(c *Command) { c.Tenant = "org/1" }))

	f.Fuzz(func(t *testing.T, state uint8, typ, id, tenant, aggID, name, version, notes, reason, org string) {
		cmd := Command{ID: id, Type: typ, Tenant: tenant, AppID: aggID, Name: name, Version: version,
			Notes: notes, Reason: reason, Org: org}
		if err := cmd.Validate(); err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || !commandFields[verr.Field] || verr.Reason == "" {
				t.Fatalf("Validate(%+v) = %v: want a ValidationError naming a field", cmd, err)
			}
			if _, derr := Decide(projections.App{}, cmd, testNow()); derr == nil || derr.Error() != err.Error() {
				t.Fatalf("Validate(%+v) = %v, but Decide = %v", cmd, err, derr)
			}
			if cmd.ID != "" {
				m := newMemLog(t)
				if _, herr := newTestService(m, Config{}).Handle(context.Background(), cmd); !errors.As(herr, &verr) || m.appends != 0 {
					t.Fatalf("Handle(%+v) = %v after %d appends; want a ValidationError and none", cmd, herr, m.appends)
				}
			}
			return
		}
		m := newMemLog(t)
		m.seed(fuzzState(state, cmd)...)
		ctx := context.Background()
		app, _, err := m.App(ctx, cmd.AppID)
		if err != nil {
			t.Fatal(err)
		}
		stream, appends := m.counts()
		env, derr := Decide(app, cmd, testNow())
		res, herr := newTestService(m, Config{}).Handle(ctx, cmd)
		if app.HasCause(cmd.ID) {
			// A retry of a command the app applied: Handle answers it.
			if herr != nil || !res.Duplicate {
				t.Fatalf("Handle(%+v) of an applied command = %+v, %v; want a duplicate", cmd, res, herr)
			}
			return
		}
		if derr != nil {
			checkRefusal(t, cmd, derr)
			if herr == nil || herr.Error() != (cmd.Type+" (command "+cmd.ID+"): "+derr.Error()) {
				t.Fatalf("Decide(%+v) = %v, but Handle = %+v, %v", cmd, derr, res, herr)
			}
			if n, a := m.counts(); n != stream || a != appends {
				t.Fatalf("refused command %+v appended", cmd)
			}
			return
		}
		checkEvent(t, app, cmd, env)
		if herr != nil || res.Position != uint64(stream+1) || res.EventID != cmd.ID || res.Type != env.Type {
			t.Fatalf("Decide(%+v) emitted %s, but Handle = %+v, %v", cmd, env.Type, res, herr)
		}
	})
}

// fuzzState returns the commands that build the state numbered state&7 of
// cmd's app: 0 none, 1 created, 2 a version submitted, 3 approved, 4
// rejected, 5 released, 6 released after another release, 7 granted to
// an organization. The version and organization are cmd's when they are
// well-formed. With state&8, another organization than cmd's tenant owns
// the app.
func fuzzState(state uint8, cmd Command) []Command {
	ownerOrg := cmd.Tenant
	if state&8 != 0 {
		ownerOrg = "org-owner"
		if cmd.Tenant == ownerOrg {
			ownerOrg = "org-owner-2"
		}
	}
	v := cmd.Version
	if checkVersion("version", v) != nil {
		v = "1.0.0"
	}
	org := cmd.Org
	if checkID("org", org) != nil || org == ownerOrg {
		org = "org-granted"
		if org == ownerOrg {
			org = "org-granted-2"
		}
	}
	c := func(typ string, fn func(*Command)) Command {
		cmd := Command{Type: typ, Tenant: ownerOrg, AppID: cmd.AppID, Name: "App"}
		if fn != nil {
			fn(&cmd)
		}
		return cmd
	}
	ver := func(v string) func(*Command) { return func(c *Command) { c.Version, c.Reason = v, "no" } }
	create := c(CmdCreate, nil)
	switch state & 7 {
	case 0:
		return nil
	case 1:
		return []Command{create}
	case 2:
		return []Command{create, c(CmdSubmitVersion, ver(v))}
	case 3:
		return []Command{create, c(CmdSubmitVersion, ver(v)), c(CmdApproveVersion, ver(v))}
	case 4:
		return []Command{create, c(CmdSubmitVersion, ver(v)), c(CmdRejectVersion, ver(v))}
	case 5:
		return []Command{create, c(CmdSubmitVersion, ver(v)), c(CmdApproveVersion, ver(v)), c(CmdPublishRelease, ver(v))}
	case 6:
		prev := "0.9"
		if v == prev {
			prev = "0.8"
		}
		return []Command{create,
			c(CmdSubmitVersion, ver(prev)), c(CmdApproveVersion, ver(prev)), c(CmdPublishRelease, ver(prev)),
			c(CmdSubmitVersion, ver(v)), c(CmdApproveVersion, ver(v)), c(CmdPublishRelease, ver(v))}
	default:
		return []Command{create, c(CmdGrant, func(c *Command) { c.Org = org })}
	}
}

// checkRefusal asserts that Decide refused a valid command as its
// contract says: not found, forbidden, or a known rule, with a message.
func checkRefusal(t *testing.T, cmd Command, err error) {
	t.Helper()
	var rerr *RuleError
	switch {
	case errors.As(err, &rerr):
		if !rules[rerr.Rule] || rerr.Message == "" {
			t.Fatalf("Decide(%+v) = RuleError %+v: unknown rule or no message", cmd, rerr)
		}
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrForbidden):
	default:
		t.Fatalf("Decide(%+v) = %v: want ErrNotFound, ErrForbidden or a RuleError", cmd, err)
	}
}

// checkEvent asserts that env, the event Decide emitted for cmd against
// app, is well-formed and carries everything cmd gave it.
func checkEvent(t *testing.T, app projections.App, cmd Command, env events.Envelope) {
	t.Helper()
	b, err := events.Marshal(env)
	if err != nil {
		t.Fatalf("event of %+v: %v", cmd, err)
	}
	back, err := events.Unmarshal(b)
	if err != nil {
		t.Fatalf("event of %+v: %s: %v", cmd, b, err)
	}
	wantType, _ := EventType(cmd.Type)
	tenant := app.Tenant
	if cmd.Type == CmdCreate {
		tenant = cmd.Tenant
	}
	got := [...]string{back.ID, back.CausationID, back.CorrelationID, back.Type, back.Tenant, back.AggregateType, back.AggregateID}
	want := [...]string{cmd.ID, cmd.ID, cmd.ID, wantType, tenant, events.AggregateApp, cmd.AppID}
	if got != want {
		t.Fatalf("event of %+v: id, causation, correlation, type, tenant, aggregate = %q, want %q", cmd, got, want)
	}
	data, err := events.Domain().Decode(back)
	if err != nil {
		t.Fatalf("event of %+v: %v", cmd, err)
	}
	var ok bool
	switch d := data.(type) {
	case *events.AppCreated:
		ok = d.Name == cmd.Name && strings.TrimSpace(d.Name) != ""
	case *events.VersionSubmitted:
		ok = d.Version == cmd.Version && d.Version != "" && d.Notes == cmd.Notes
	case *events.VersionApproved:
		ok = d.Version == cmd.Version && d.Version != ""
	case *events.VersionRejected:
		ok = d.Version == cmd.Version && d.Version != "" && d.Reason == cmd.Reason && strings.TrimSpace(d.Reason) != ""
	case *events.ReleasePublished:
		ok = d.Version == cmd.Version && d.Version != ""
	case *events.ReleaseRolledBack:
		ok = d.From == app.Release && d.From != "" && d.To == app.Previous()
	case *events.AppGranted:
		ok = d.Org == cmd.Org && events.ValidID(d.Org)
	case *events.AppRevoked:
		ok = d.Org == cmd.Org && events.ValidID(d.Org)
	}
	if !ok {
		t.Fatalf("event of %+v carries %#v", cmd, data)
	}
	apply(t, &app, back, uint64(app.Position)+1)
}
