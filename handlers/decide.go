package handlers

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/projections"
)

// SchemaVersion is the schema version of every event the handlers emit.
const SchemaVersion = 1

// Decide decides cmd against app, the current state of the aggregate
// cmd.AppID (the zero App when it does not exist), at time now. It is pure:
// it reads nothing but its arguments and writes nothing.
//
// It returns the one event the command emits, or, in this order:
//   - a *[ValidationError] when a field is malformed (see [Command.Validate]);
//   - an error wrapping [ErrNotFound] when the app does not exist (all but create);
//   - an error wrapping [ErrForbidden] when cmd.Tenant does not own the app;
//   - a *[RuleError] when the transition is illegal in the app's state.
//
// The event's ID, CausationID and CorrelationID are the command id, so a
// retried command yields the same event id and is deduplicated downstream.
func Decide(app projections.App, cmd Command, now time.Time) (events.Envelope, error) {
	if err := cmd.Validate(); err != nil {
		return events.Envelope{}, err
	}
	if app.Exists() && app.ID != cmd.AppID {
		// A wiring bug, not a client error: the caller read the wrong app.
		return events.Envelope{}, fmt.Errorf("decide %s: got the state of app %q for app %q", cmd.Type, app.ID, cmd.AppID)
	}
	tenant := app.Tenant
	if cmd.Type == CmdCreate {
		tenant = cmd.Tenant
	} else {
		if !app.Exists() {
			return events.Envelope{}, fmt.Errorf("app %q: %w", cmd.AppID, ErrNotFound)
		}
		if app.Tenant != cmd.Tenant {
			return events.Envelope{}, fmt.Errorf("app %q, tenant %q: %w", cmd.AppID, cmd.Tenant, ErrForbidden)
		}
	}
	data, err := decideData(&app, cmd)
	if err != nil {
		return events.Envelope{}, err
	}
	return newEnvelope(cmd, tenant, data, now)
}

// decideData dispatches to the command type's decide function, which checks
// the transition and returns the event's data.
func decideData(app *projections.App, cmd Command) (any, error) {
	switch cmd.Type {
	case CmdCreate:
		return decideCreate(app, cmd)
	case CmdSubmitVersion:
		return decideSubmit(app, cmd)
	case CmdApproveVersion:
		return decideApprove(app, cmd)
	case CmdRejectVersion:
		return decideReject(app, cmd)
	case CmdPublishRelease:
		return decidePublish(app, cmd)
	case CmdRollbackRelease:
		return decideRollback(app)
	case CmdGrant:
		return decideGrant(app, cmd)
	case CmdRevoke:
		return decideRevoke(app, cmd)
	}
	// Unreachable: Validate rejected unknown types.
	return nil, &ValidationError{Field: "type", Reason: fmt.Sprintf("unknown command type %q", cmd.Type)}
}

// newEnvelope wraps the data of cmd's event in an envelope.
func newEnvelope(cmd Command, tenant string, data any, now time.Time) (events.Envelope, error) {
	typ, _ := EventType(cmd.Type)
	raw, err := json.Marshal(data)
	if err != nil {
		return events.Envelope{}, fmt.Errorf("encode %s data: %w", typ, err)
	}
	return events.Envelope{
		ID:            cmd.ID,
		Type:          typ,
		SchemaVersion: SchemaVersion,
		Tenant:        tenant,
		AggregateType: events.AggregateApp,
		AggregateID:   cmd.AppID,
		OccurredAt:    now.UTC(),
		CorrelationID: cmd.ID,
		CausationID:   cmd.ID,
		Data:          raw,
	}, nil
}
