package handlers

import (
	"testing"

	"github.com/evflow/evflow/events"
)

func TestDecidePublish(t *testing.T) {
	pending := []Command{cmdCreate(), cmdSubmit("1.0.0")}
	approved := []Command{cmdCreate(), cmdSubmit("1.0.0"), cmdApprove("1.0.0")}
	runDecide(t, []decideCase{
		{name: "publishes", given: approved, cmd: cmdPublish("1.0.0"), want: &events.ReleasePublished{Version: "1.0.0"}},
		{name: "publishes over a release", given: append(released("1.0.0"), cmdSubmit("1.1.0"), cmdApprove("1.1.0")),
			cmd: cmdPublish("1.1.0"), want: &events.ReleasePublished{Version: "1.1.0"}},
		{name: "republishes an earlier release", given: released("1.0.0", "1.1.0"), cmd: cmdPublish("1.0.0"),
			want: &events.ReleasePublished{Version: "1.0.0"}},
		{name: "current release", given: released("1.0.0"), cmd: cmdPublish("1.0.0"), rule: RuleAlreadyReleased},
		{name: "pending", given: pending, cmd: cmdPublish("1.0.0"), rule: RuleVersionNotApproved},
		{name: "rejected", given: append(pending, cmdReject("1.0.0", "crashes")), cmd: cmdPublish("1.0.0"),
			rule: RuleVersionNotApproved},
		{name: "unknown", given: approved, cmd: cmdPublish("2.0.0"), rule: RuleVersionNotApproved},
		{name: "no app", cmd: cmdPublish("1.0.0"), err: ErrNotFound},
		{name: "not owner", given: approved, cmd: with(cmdPublish("1.0.0"), func(c *Command) { c.Tenant = other }), err: ErrForbidden},
		{name: "no version", given: approved, cmd: cmdPublish(""), field: "version"},
	})
}

func TestDecideRollback(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "to previous", given: released("1.0.0", "1.1.0"), cmd: cmdRollback(),
			want: &events.ReleaseRolledBack{From: "1.1.0", To: "1.0.0"}},
		{name: "to none", given: released("1.0.0"), cmd: cmdRollback(), want: &events.ReleaseRolledBack{From: "1.0.0", To: ""}},
		{name: "after a rollback", given: append(released("1.0.0", "1.1.0", "1.2.0"), cmdRollback()), cmd: cmdRollback(),
			want: &events.ReleaseRolledBack{From: "1.1.0", To: "1.0.0"}},
		{name: "no release ever", given: []Command{cmdCreate()}, cmd: cmdRollback(), rule: RuleNoRelease},
		{name: "rolled back to none", given: append(released("1.0.0"), cmdRollback()), cmd: cmdRollback(), rule: RuleNoRelease},
		{name: "no app", cmd: cmdRollback(), err: ErrNotFound},
		{name: "not owner", given: released("1.0.0"), cmd: with(cmdRollback(), func(c *Command) { c.Tenant = other }), err: ErrForbidden},
		{name: "bad app id", given: released("1.0.0"), cmd: with(cmdRollback(), func(c *Command) { c.AppID = "" }), field: "app_id"},
	})
}
