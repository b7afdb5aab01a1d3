package handlers

import (
	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// decidePublish makes an approved version the current release.
func decidePublish(app *projections.App, cmd Command) (any, error) {
	if app.Release == cmd.Version {
		return nil, ruleErr(RuleAlreadyReleased, "version %q is already the current release of app %q", cmd.Version, app.ID)
	}
	switch v := app.Version(cmd.Version); {
	case v == nil:
		return nil, ruleErr(RuleVersionNotApproved, "version %q of app %q was never submitted, so it cannot be published",
			cmd.Version, app.ID)
	case v.Status != projections.VersionApproved:
		return nil, ruleErr(RuleVersionNotApproved, "version %q of app %q is %s, only an approved version can be published",
			cmd.Version, app.ID, v.Status)
	}
	return &events.ReleasePublished{Version: cmd.Version}, nil
}

// decideRollback withdraws the current release in favour of the one
// published before it, or of none.
func decideRollback(app *projections.App) (any, error) {
	if app.Release == "" {
		return nil, ruleErr(RuleNoRelease, "app %q has no current release to roll back", app.ID)
	}
	return &events.ReleaseRolledBack{From: app.Release, To: app.Previous()}, nil
}
