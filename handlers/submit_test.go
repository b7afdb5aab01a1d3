package handlers

import (
	"strings"
	"testing"

	"github.com/evflow/evflow/events"
)

func TestDecideSubmit(t *testing.T) {
	created := []Command{cmdCreate()}
	runDecide(t, []decideCase{
		{name: "submits", given: created, cmd: cmdSubmit("1.0.0"),
			want: &events.VersionSubmitted{Version: "1.0.0", Notes: "notes 1.0.0"}},
		{name: "without notes", given: created, cmd: with(cmdSubmit("1.0.0"), func(c *Command) { c.Notes = "" }),
			want: &events.VersionSubmitted{Version: "1.0.0"}},
		{name: "all version characters", given: created, cmd: with(cmdSubmit("v1.0.0-rc_1+build.7"), func(c *Command) { c.Notes = "" }),
			want: &events.VersionSubmitted{Version: "v1.0.0-rc_1+build.7"}},
		{name: "second version", given: append(created, cmdSubmit("1.0.0")), cmd: with(cmdSubmit("1.1.0"), func(c *Command) { c.Notes = "" }),
			want: &events.VersionSubmitted{Version: "1.1.0"}},
		{name: "version pending", given: append(created, cmdSubmit("1.0.0")), cmd: cmdSubmit("1.0.0"), rule: RuleVersionExists},
		{name: "version rejected", given: append(created, cmdSubmit("1.0.0"), cmdReject("1.0.0", "crashes")),
			cmd: cmdSubmit("1.0.0"), rule: RuleVersionExists},
		{name: "version released", given: released("1.0.0"), cmd: cmdSubmit("1.0.0"), rule: RuleVersionExists},
		{name: "no app", cmd: cmdSubmit("1.0.0"), err: ErrNotFound},
		{name: "not owner", given: created, cmd: with(cmdSubmit("1.0.0"), func(c *Command) { c.Tenant = other }), err: ErrForbidden},
		{name: "no version", given: created, cmd: cmdSubmit(""), field: "version"},
		{name: "version with space", given: created, cmd: cmdSubmit("1.0 beta"), field: "version"},
		{name: "version with slash", given: created, cmd: cmdSubmit("1/0"), field: "version"},
		{name: "version too long", given: created, cmd: cmdSubmit(strings.Repeat("1", 65)), field: "version"},
		{name: "notes too long", given: created, cmd: with(cmdSubmit("1.0.0"), func(c *Command) { c.Notes = strings.Repeat("n", 2001) }),
			field: "notes"},
		{name: "validation before existence", cmd: cmdSubmit("1 0"), field: "version"},
	})
}
