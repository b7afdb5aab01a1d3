package handlers

import (
	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// decideSubmit submits a new version for review. A version name is used
// once: a rejected version is fixed by submitting a new version.
func decideSubmit(app *projections.App, cmd Command) (any, error) {
	if v := app.Version(cmd.Version); v != nil {
		return nil, ruleErr(RuleVersionExists, "version %q of app %q was already submitted (it is %s)",
			cmd.Version, app.ID, v.Status)
	}
	return &events.VersionSubmitted{Version: cmd.Version, Notes: cmd.Notes}, nil
}
