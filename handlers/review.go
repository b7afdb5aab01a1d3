package handlers

import (
	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// decideApprove approves a version awaiting review.
func decideApprove(app *projections.App, cmd Command) (any, error) {
	if err := checkPending(app, cmd.Version); err != nil {
		return nil, err
	}
	return &events.VersionApproved{Version: cmd.Version}, nil
}

// decideReject rejects a version awaiting review, with a reason.
func decideReject(app *projections.App, cmd Command) (any, error) {
	if err := checkPending(app, cmd.Version); err != nil {
		return nil, err
	}
	return &events.VersionRejected{Version: cmd.Version, Reason: cmd.Reason}, nil
}

// checkPending fails with [RuleVersionNotSubmitted] unless version is
// awaiting review.
func checkPending(app *projections.App, version string) error {
	v := app.Version(version)
	if v == nil {
		return ruleErr(RuleVersionNotSubmitted, "version %q of app %q was never submitted", version, app.ID)
	}
	if v.Status != projections.VersionSubmitted {
		return ruleErr(RuleVersionNotSubmitted, "version %q of app %q is not awaiting review: it is already %s",
			version, app.ID, v.Status)
	}
	return nil
}
