package events

import (
	"errors"
	"time"
)

// Aggregate types of the reference domain.
const (
	// AggregateApp is a mini-program and its lifecycle (versions, reviews,
	// releases, grants). Commands are decided against its current state.
	AggregateApp = "app"
	// AggregateUsage carries usage facts (launches) of one app. Its
	// aggregate id is the app id, so an app's usage shares its partition.
	AggregateUsage = "usage"
)

// Event types of the reference domain, all at schema version 1.
const (
	TypeAppCreated        = "app.created"
	TypeVersionSubmitted  = "app.version_submitted"
	TypeVersionApproved   = "app.version_approved"
	TypeVersionRejected   = "app.version_rejected"
	TypeReleasePublished  = "app.release_published"
	TypeReleaseRolledBack = "app.release_rolled_back"
	TypeAppGranted        = "app.granted"
	TypeAppRevoked        = "app.revoked"
	TypeAppLaunched       = "app.launched"
)

// ErrConflict is returned by an append whose expected aggregate position is
// no longer the aggregate's last: another event got there first.
var ErrConflict = errors.New("aggregate changed concurrently")

// ErrUnavailable is returned by an append the broker did not acknowledge in
// time (unreachable, electing a leader). Some of the events may have been
// stored; appending the same events again is safe, as their ids deduplicate.
var ErrUnavailable = errors.New("event stream unavailable")

// AppCreated: an organization registered a mini-program.
type AppCreated struct {
	Name string `json:"name"`
}

// VersionSubmitted: a version was uploaded and awaits review.
type VersionSubmitted struct {
	Version string `json:"version"`
	Notes   string `json:"notes,omitempty"`
}

// VersionApproved: a reviewer approved a submitted version.
type VersionApproved struct {
	Version string `json:"version"`
}

// VersionRejected: a reviewer rejected a submitted version.
type VersionRejected struct {
	Version string `json:"version"`
	Reason  string `json:"reason"`
}

// ReleasePublished: an approved version became the current release.
type ReleasePublished struct {
	Version string `json:"version"`
}

// ReleaseRolledBack: the current release was withdrawn in favour of the
// previous one (To is empty when there is none).
type ReleaseRolledBack struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// AppGranted: the owner let another organization use the app.
type AppGranted struct {
	Org string `json:"org"`
}

// AppRevoked: the owner withdrew a grant.
type AppRevoked struct {
	Org string `json:"org"`
}

// AppLaunched: a device launched a version of an app.
type AppLaunched struct {
	AppID    string    `json:"app_id"`
	Version  string    `json:"version"`
	DeviceID string    `json:"device_id"`
	Org      string    `json:"org"`
	At       time.Time `json:"at"`
}

// Day is the UTC day the launch counts towards, as YYYY-MM-DD.
func (l *AppLaunched) Day() string { return l.At.UTC().Format(DayLayout) }

// DayLayout is the layout of day keys in stats and queries.
const DayLayout = "2006-01-02"

// Check rejects a launch that lacks what its projections key on.
func (l *AppLaunched) Check() error {
	var errs []error
	if !ValidID(l.AppID) {
		errs = append(errs, &FieldError{"app_id", "must be 1-128 characters of [A-Za-z0-9_-]"})
	}
	if l.DeviceID == "" || len(l.DeviceID) > 128 {
		errs = append(errs, &FieldError{"device_id", "must be 1-128 characters"})
	}
	if l.At.IsZero() {
		errs = append(errs, &FieldError{"at", "is required"})
	}
	return errors.Join(errs...)
}

// Domain returns a registry holding the reference domain's event types.
func Domain() *Registry {
	r := NewRegistry()
	r.Register(TypeAppCreated, 1, func() any { return new(AppCreated) })
	r.Register(TypeVersionSubmitted, 1, func() any { return new(VersionSubmitted) })
	r.Register(TypeVersionApproved, 1, func() any { return new(VersionApproved) })
	r.Register(TypeVersionRejected, 1, func() any { return new(VersionRejected) })
	r.Register(TypeReleasePublished, 1, func() any { return new(ReleasePublished) })
	r.Register(TypeReleaseRolledBack, 1, func() any { return new(ReleaseRolledBack) })
	r.Register(TypeAppGranted, 1, func() any { return new(AppGranted) })
	r.Register(TypeAppRevoked, 1, func() any { return new(AppRevoked) })
	r.Register(TypeAppLaunched, 1, func() any { return new(AppLaunched) })
	return r
}
