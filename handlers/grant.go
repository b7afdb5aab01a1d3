package handlers

import (
	"slices"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// decideGrant lets another organization use the app.
func decideGrant(app *projections.App, cmd Command) (any, error) {
	if cmd.Org == app.Tenant {
		return nil, ruleErr(RuleGrantToOwner, "organization %q owns app %q and needs no grant", cmd.Org, app.ID)
	}
	if slices.Contains(app.Grants, cmd.Org) {
		return nil, ruleErr(RuleAlreadyGranted, "app %q is already granted to organization %q", app.ID, cmd.Org)
	}
	return &events.AppGranted{Org: cmd.Org}, nil
}

// decideRevoke withdraws a grant.
func decideRevoke(app *projections.App, cmd Command) (any, error) {
	if !slices.Contains(app.Grants, cmd.Org) {
		return nil, ruleErr(RuleNotGranted, "app %q is not granted to organization %q", app.ID, cmd.Org)
	}
	return &events.AppRevoked{Org: cmd.Org}, nil
}
