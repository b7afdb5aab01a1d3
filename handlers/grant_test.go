package handlers

import (
	"testing"

	"github.com/evflow/evflow/events"
)

func TestDecideGrant(t *testing.T) {
	created := []Command{cmdCreate()}
	runDecide(t, []decideCase{
		{name: "grants", given: created, cmd: cmdGrant(other), want: &events.AppGranted{Org: other}},
		{name: "grants a second org", given: append(created, cmdGrant(other)), cmd: cmdGrant("org-3"),
			want: &events.AppGranted{Org: "org-3"}},
		{name: "regrants after revoke", given: append(created, cmdGrant(other), cmdRevoke(other)), cmd: cmdGrant(other),
			want: &events.AppGranted{Org: other}},
		{name: "already granted", given: append(created, cmdGrant(other)), cmd: cmdGrant(other), rule: RuleAlreadyGranted},
		{name: "to owner", given: created, cmd: cmdGrant(owner), rule: RuleGrantToOwner},
		{name: "no app", cmd: cmdGrant(other), err: ErrNotFound},
		{name: "not owner", given: append(created, cmdGrant(other)),
			cmd: with(cmdGrant("org-3"), func(c *Command) { c.Tenant = other }), err: ErrForbidden},
		{name: "no org", given: created, cmd: cmdGrant(""), field: "org"},
		{name: "bad org", given: created, cmd: cmdGrant("org.*"), field: "org"},
	})
}

func TestDecideRevoke(t *testing.T) {
	granted := []Command{cmdCreate(), cmdGrant(other)}
	runDecide(t, []decideCase{
		{name: "revokes", given: granted, cmd: cmdRevoke(other), want: &events.AppRevoked{Org: other}},
		{name: "not granted", given: granted, cmd: cmdRevoke("org-3"), rule: RuleNotGranted},
		{name: "revoked twice", given: append(granted, cmdRevoke(other)), cmd: cmdRevoke(other), rule: RuleNotGranted},
		{name: "owner", given: granted, cmd: cmdRevoke(owner), rule: RuleNotGranted},
		{name: "no app", cmd: cmdRevoke(other), err: ErrNotFound},
		{name: "grantee is not owner", given: granted, cmd: with(cmdRevoke(other), func(c *Command) { c.Tenant = other }),
			err: ErrForbidden},
		{name: "bad org", given: granted, cmd: cmdRevoke("a b"), field: "org"},
	})
}
