package handlers

import (
	"reflect"
	"slices"
	"testing"

	"github.com/evflow/evflow/projections"
)

// TestDecideFoldLifecycle decides a whole lifecycle, folds each event
// through projections.App.Apply, and checks the state along the way.
func TestDecideFoldLifecycle(t *testing.T) {
	var app projections.App
	var pos uint64
	step := func(id string, cmd Command) {
		t.Helper()
		cmd.ID = id
		env, err := Decide(app, cmd, testNow())
		if err != nil {
			t.Fatalf("%s %s: %v", id, cmd.Type, err)
		}
		pos += 3 // usage events in between take positions too
		apply(t, &app, env, pos)
		if !app.HasCause(id) {
			t.Fatalf("%s: app does not record its cause", id)
		}
	}
	step("c1", cmdCreate())
	step("c2", cmdSubmit("1.0"))
	step("c3", cmdApprove("1.0"))
	step("c4", cmdPublish("1.0"))
	step("c5", cmdSubmit("1.1"))
	step("c6", cmdReject("1.1", "crashes on start"))
	step("c7", cmdSubmit("1.2"))
	step("c8", cmdApprove("1.2"))
	step("c9", cmdPublish("1.2"))
	step("c10", cmdGrant("org-3"))
	step("c11", cmdGrant(other))
	step("c12", cmdRevoke("org-3"))

	if app.ID != appID || app.Tenant != owner || app.Name != "Weather" || app.Position != int64(pos) {
		t.Errorf("id, tenant, name, position = %q %q %q %d", app.ID, app.Tenant, app.Name, app.Position)
	}
	var statuses []string
	for _, v := range app.Versions {
		statuses = append(statuses, v.Version+"="+v.Status)
	}
	if want := []string{"1.0=approved", "1.1=rejected", "1.2=approved"}; !slices.Equal(statuses, want) {
		t.Errorf("versions = %v, want %v", statuses, want)
	}
	if r := app.Version("1.1").Reason; r != "crashes on start" {
		t.Errorf("1.1 reason = %q", r)
	}
	if app.Release != "1.2" || !slices.Equal(app.Releases, []string{"1.0", "1.2"}) {
		t.Errorf("release %q, releases %v; want 1.2 and [1.0 1.2]", app.Release, app.Releases)
	}
	if !slices.Equal(app.Grants, []string{other}) {
		t.Errorf("grants = %v, want [%s]", app.Grants, other)
	}

	step("c13", cmdRollback())
	if app.Release != "1.0" {
		t.Fatalf("after first rollback release = %q, want 1.0", app.Release)
	}
	step("c14", cmdRollback())
	if app.Release != "" || len(app.Releases) != 0 {
		t.Fatalf("after second rollback release %q, releases %v; want none", app.Release, app.Releases)
	}
	before := cloneApp(app)
	_, err := Decide(app, with(cmdRollback(), func(c *Command) { c.ID = "c15" }), testNow())
	checkDecideErr(t, err, decideCase{rule: RuleNoRelease})
	if !reflect.DeepEqual(app, before) {
		t.Error("a failed decision changed the state")
	}

	// Publishing again after rolling back to none starts a new stack.
	step("c16", cmdPublish("1.2"))
	if app.Release != "1.2" || !slices.Equal(app.Releases, []string{"1.2"}) {
		t.Errorf("release %q, releases %v; want 1.2 and [1.2]", app.Release, app.Releases)
	}
}

// TestDecideDoesNotModifyState checks Decide leaves the caller's state,
// including its slices, untouched.
func TestDecideDoesNotModifyState(t *testing.T) {
	app := given(t, append(released("1.0", "1.1"), cmdGrant(other))...)
	before := cloneApp(app)
	for _, cmd := range []Command{cmdRollback(), cmdRevoke(other), cmdSubmit("2.0"), cmdPublish("1.0")} {
		cmd.ID = "probe"
		if _, err := Decide(app, cmd, testNow()); err != nil {
			t.Fatalf("%s: %v", cmd.Type, err)
		}
	}
	if !reflect.DeepEqual(app, before) {
		t.Errorf("state changed:\n%+v\nwant\n%+v", app, before)
	}
}

// TestDecideRejectsStateOfAnotherApp guards against wiring bugs: a
// decision against the wrong aggregate's state must fail.
func TestDecideRejectsStateOfAnotherApp(t *testing.T) {
	app := given(t, cmdCreate())
	cmd := with(cmdSubmit("1.0"), func(c *Command) { c.ID, c.AppID = "x", "app-2" })
	if _, err := Decide(app, cmd, testNow()); err == nil {
		t.Fatal("Decide accepted the state of app-1 for a command on app-2")
	}
}

func cloneApp(a projections.App) projections.App {
	a.Versions = slices.Clone(a.Versions)
	a.Releases = slices.Clone(a.Releases)
	a.Grants = slices.Clone(a.Grants)
	a.Causes = slices.Clone(a.Causes)
	return a
}
