package handlers

import (
	"strings"
	"testing"

	"github.com/evflow/evflow/events"
)

func TestDecideApprove(t *testing.T) {
	pending := []Command{cmdCreate(), cmdSubmit("1.0.0")}
	runDecide(t, []decideCase{
		{name: "approves", given: pending, cmd: cmdApprove("1.0.0"), want: &events.VersionApproved{Version: "1.0.0"}},
		{name: "approve twice", given: append(pending, cmdApprove("1.0.0")), cmd: cmdApprove("1.0.0"), rule: RuleVersionNotSubmitted},
		{name: "approve rejected", given: append(pending, cmdReject("1.0.0", "crashes")), cmd: cmdApprove("1.0.0"),
			rule: RuleVersionNotSubmitted},
		{name: "approve released", given: released("1.0.0"), cmd: cmdApprove("1.0.0"), rule: RuleVersionNotSubmitted},
		{name: "approve unknown", given: pending, cmd: cmdApprove("2.0.0"), rule: RuleVersionNotSubmitted},
		{name: "no app", cmd: cmdApprove("1.0.0"), err: ErrNotFound},
		{name: "not owner", given: pending, cmd: with(cmdApprove("1.0.0"), func(c *Command) { c.Tenant = other }), err: ErrForbidden},
		{name: "no version", given: pending, cmd: cmdApprove(""), field: "version"},
		{name: "bad version", given: pending, cmd: cmdApprove("1.0.0*"), field: "version"},
	})
}

func TestDecideReject(t *testing.T) {
	pending := []Command{cmdCreate(), cmdSubmit("1.0.0")}
	runDecide(t, []decideCase{
		{name: "rejects", given: pending, cmd: cmdReject("1.0.0", "crashes on start"),
			want: &events.VersionRejected{Version: "1.0.0", Reason: "crashes on start"}},
		{name: "reason of 1000 characters", given: pending, cmd: cmdReject("1.0.0", strings.Repeat("é", 1000)),
			want: &events.VersionRejected{Version: "1.0.0", Reason: strings.Repeat("é", 1000)}},
		{name: "reject twice", given: append(pending, cmdReject("1.0.0", "crashes")), cmd: cmdReject("1.0.0", "again"),
			rule: RuleVersionNotSubmitted},
		{name: "reject approved", given: append(pending, cmdApprove("1.0.0")), cmd: cmdReject("1.0.0", "too late"),
			rule: RuleVersionNotSubmitted},
		{name: "reject unknown", given: pending, cmd: cmdReject("2.0.0", "what"), rule: RuleVersionNotSubmitted},
		{name: "no app", cmd: cmdReject("1.0.0", "crashes"), err: ErrNotFound},
		{name: "not owner", given: pending, cmd: with(cmdReject("1.0.0", "crashes"), func(c *Command) { c.Tenant = other }),
			err: ErrForbidden},
		{name: "no reason", given: pending, cmd: cmdReject("1.0.0", ""), field: "reason"},
		{name: "blank reason", given: pending, cmd: cmdReject("1.0.0", "  "), field: "reason"},
		{name: "reason too long", given: pending, cmd: cmdReject("1.0.0", strings.Repeat("r", 1001)), field: "reason"},
		{name: "bad version", given: pending, cmd: cmdReject("", "crashes"), field: "version"},
		{name: "validation before existence", cmd: cmdReject("1.0.0", ""), field: "reason"},
	})
}
