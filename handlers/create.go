package handlers

import (
	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// decideCreate registers a new app owned by the acting tenant.
func decideCreate(app *projections.App, cmd Command) (any, error) {
	if app.Exists() {
		return nil, ruleErr(RuleAppExists, "app %q already exists", cmd.AppID)
	}
	return &events.AppCreated{Name: cmd.Name}, nil
}
