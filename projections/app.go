package projections

import (
	"slices"
	"time"

	"github.com/evflow/evflow/events"
)

// Version review states.
const (
	VersionSubmitted = "submitted"
	VersionApproved  = "approved"
	VersionRejected  = "rejected"
)

// maxCauses bounds how many recent command ids an app remembers, the
// window in which a retried command is recognised as already applied.
const maxCauses = 64

// App is the current state of one app aggregate: the Mongo `apps` document,
// the query API's answer, and the state command handlers decide against.
// Copies of an App share its slices: Apply on a copy changes the original.
type App struct {
	ID     string `bson:"_id" json:"id"`
	Tenant string `bson:"tenant" json:"tenant"`
	Name   string `bson:"name" json:"name"`
	// Versions in submission order.
	Versions []Version `bson:"versions" json:"versions"`
	// Release is the current release, empty when none.
	Release string `bson:"release" json:"release"`
	// Releases is the stack of published releases; rollback pops it.
	Releases []string `bson:"releases" json:"releases"`
	// Grants lists the organizations the app is granted to, sorted.
	Grants    []string  `bson:"grants" json:"grants"`
	CreatedAt time.Time `bson:"created_at" json:"created_at"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at"`
	// Position is the stream position of the last event applied.
	Position int64 `bson:"pos" json:"position"`
	// Causes holds the causation ids (command ids) of the most recent
	// events, so a retried command can be answered without re-deciding.
	Causes []string `bson:"causes" json:"-"`
}

// Version is one submitted version and its review.
type Version struct {
	Version     string    `bson:"version" json:"version"`
	Status      string    `bson:"status" json:"status"`
	Notes       string    `bson:"notes,omitempty" json:"notes,omitempty"`
	Reason      string    `bson:"reason,omitempty" json:"reason,omitempty"`
	SubmittedAt time.Time `bson:"submitted_at" json:"submitted_at"`
	DecidedAt   time.Time `bson:"decided_at,omitempty" json:"decided_at,omitzero"`
}

// Exists reports whether the app has been created.
func (a *App) Exists() bool { return a.Position > 0 }

// Version returns the named version, or nil.
func (a *App) Version(v string) *Version {
	for i := range a.Versions {
		if a.Versions[i].Version == v {
			return &a.Versions[i]
		}
	}
	return nil
}

// HasCause reports whether an event caused by command id has been applied.
func (a *App) HasCause(id string) bool { return id != "" && slices.Contains(a.Causes, id) }

// Apply folds one app event into the state. Events at or below the state's
// position are ignored, which makes the fold idempotent. Apply reports
// whether the event changed the state.
func (a *App) Apply(e Event) bool {
	if int64(e.Position) <= a.Position || e.AggregateType != events.AggregateApp {
		return false
	}
	// Only a creation starts an app, and only once: anything else on an app
	// that does not exist (a history read from its middle) changes nothing.
	if _, create := e.Payload.(*events.AppCreated); create == a.Exists() {
		return false
	}
	// Stores keep milliseconds (BSON dates): so does the fold, so a state
	// folded in memory equals the one read back.
	at := e.OccurredAt.UTC().Truncate(time.Millisecond)
	switch d := e.Payload.(type) {
	case *events.AppCreated:
		a.ID, a.Tenant, a.Name, a.CreatedAt = e.AggregateID, e.Tenant, d.Name, at
	case *events.VersionSubmitted:
		a.Versions = append(a.Versions, Version{Version: d.Version, Status: VersionSubmitted, Notes: d.Notes, SubmittedAt: at})
	case *events.VersionApproved:
		if v := a.Version(d.Version); v != nil {
			v.Status, v.DecidedAt = VersionApproved, at
		}
	case *events.VersionRejected:
		if v := a.Version(d.Version); v != nil {
			v.Status, v.Reason, v.DecidedAt = VersionRejected, d.Reason, at
		}
	case *events.ReleasePublished:
		a.Release = d.Version
		a.Releases = append(a.Releases, d.Version)
	case *events.ReleaseRolledBack:
		if n := len(a.Releases); n > 0 {
			a.Releases = a.Releases[:n-1]
		}
		a.Release = d.To
	case *events.AppGranted:
		if !slices.Contains(a.Grants, d.Org) {
			a.Grants = append(a.Grants, d.Org)
			slices.Sort(a.Grants)
		}
	case *events.AppRevoked:
		a.Grants = slices.DeleteFunc(a.Grants, func(o string) bool { return o == d.Org })
	default:
		return false
	}
	a.Position, a.UpdatedAt = int64(e.Position), at
	if e.CausationID != "" {
		a.Causes = append(a.Causes, e.CausationID)
		if n := len(a.Causes); n > maxCauses {
			a.Causes = slices.Clone(a.Causes[n-maxCauses:])
		}
	}
	return true
}

// Previous returns the release a rollback would return to ("" for none).
func (a *App) Previous() string {
	if n := len(a.Releases); n >= 2 {
		return a.Releases[n-2]
	}
	return ""
}
