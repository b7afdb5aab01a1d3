package handlers

import (
	"strings"
	"testing"

	"github.com/evflow/evflow/events"
)

func TestDecideCreate(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "creates", cmd: cmdCreate(), want: &events.AppCreated{Name: "Weather"}},
		{name: "name of 200 characters", cmd: with(cmdCreate(), func(c *Command) { c.Name = strings.Repeat("天", 200) }),
			want: &events.AppCreated{Name: strings.Repeat("天", 200)}},
		{name: "exists", given: []Command{cmdCreate()}, cmd: cmdCreate(), rule: RuleAppExists},
		{name: "exists, other tenant", given: []Command{cmdCreate()},
			cmd: with(cmdCreate(), func(c *Command) { c.Tenant = other }), rule: RuleAppExists},
		{name: "no name", cmd: with(cmdCreate(), func(c *Command) { c.Name = "" }), field: "name"},
		{name: "blank name", cmd: with(cmdCreate(), func(c *Command) { c.Name = " \t " }), field: "name"},
		{name: "name too long", cmd: with(cmdCreate(), func(c *Command) { c.Name = strings.Repeat("x", 201) }), field: "name"},
		{name: "name not UTF-8", cmd: with(cmdCreate(), func(c *Command) { c.Name = "\xff" }), field: "name"},
		{name: "bad app id", cmd: with(cmdCreate(), func(c *Command) { c.AppID = "a.b" }), field: "app_id"},
		{name: "bad tenant", cmd: with(cmdCreate(), func(c *Command) { c.Tenant = "org 1" }), field: "tenant"},
		{name: "no tenant", cmd: with(cmdCreate(), func(c *Command) { c.Tenant = "" }), field: "tenant"},
		{name: "validation before state", given: []Command{cmdCreate()},
			cmd: with(cmdCreate(), func(c *Command) { c.Name = "" }), field: "name"},
	})
}
