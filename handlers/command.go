// Package handlers decides commands of the app aggregate against its
// current state ([projections.App]) and turns them into events, and turns
// app.launched usage reports into events. Deciding is pure ([Decide]); the
// [Service] reads the state, decides and appends, retrying when the read
// model is behind the stream.
package handlers

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/evflow/evflow/events"
)

// Command types, as the HTTP API and the Go client send them. Each command
// that is accepted becomes exactly one event (see [EventType]).
const (
	CmdCreate          = "app.create"
	CmdSubmitVersion   = "app.submit_version"
	CmdApproveVersion  = "app.approve_version"
	CmdRejectVersion   = "app.reject_version"
	CmdPublishRelease  = "app.publish_release"
	CmdRollbackRelease = "app.rollback_release"
	CmdGrant           = "app.grant"
	CmdRevoke          = "app.revoke"
)

// Field limits, in characters (runes).
const (
	MaxNameLen    = 200
	MaxVersionLen = 64
	MaxNotesLen   = 2000
	MaxReasonLen  = 1000
)

// Command is a command as the HTTP API and the Go client send it. Fields a
// command type does not use are ignored.
type Command struct {
	// ID is the idempotency key. It becomes the event's id, so a retried
	// command is deduplicated by the broker and recognised by the read
	// model. [Service.Handle] generates one when it is empty.
	ID string `json:"id,omitempty"`
	// Type is one of the Cmd constants.
	Type string `json:"type"`
	// Tenant is the acting organization; it must own the app (or, for
	// create, becomes its owner).
	Tenant string `json:"tenant"`
	// AppID names the app aggregate.
	AppID string `json:"app_id"`
	// Name is the app's display name (create).
	Name string `json:"name,omitempty"`
	// Version names a version (submit, approve, reject, publish).
	Version string `json:"version,omitempty"`
	// Notes are release notes (submit, optional).
	Notes string `json:"notes,omitempty"`
	// Reason explains a rejection (reject, required).
	Reason string `json:"reason,omitempty"`
	// Org is the organization to grant to or revoke from (grant, revoke).
	Org string `json:"org,omitempty"`
}

// CommandTypes lists the command types in lifecycle order.
func CommandTypes() []string {
	return []string{CmdCreate, CmdSubmitVersion, CmdApproveVersion, CmdRejectVersion,
		CmdPublishRelease, CmdRollbackRelease, CmdGrant, CmdRevoke}
}

// EventType returns the type of the event an accepted command of type
// cmdType emits, and false for an unknown command type.
func EventType(cmdType string) (string, bool) {
	switch cmdType {
	case CmdCreate:
		return events.TypeAppCreated, true
	case CmdSubmitVersion:
		return events.TypeVersionSubmitted, true
	case CmdApproveVersion:
		return events.TypeVersionApproved, true
	case CmdRejectVersion:
		return events.TypeVersionRejected, true
	case CmdPublishRelease:
		return events.TypeReleasePublished, true
	case CmdRollbackRelease:
		return events.TypeReleaseRolledBack, true
	case CmdGrant:
		return events.TypeAppGranted, true
	case CmdRevoke:
		return events.TypeAppRevoked, true
	}
	return "", false
}

// Validate checks the command's fields without looking at any state. It
// returns the first problem found as a *[ValidationError], checking type,
// id, tenant and app_id first, then the fields of the command type.
func (c Command) Validate() error {
	if _, ok := EventType(c.Type); !ok {
		return &ValidationError{Field: "type", Reason: fmt.Sprintf("unknown command type %q (want one of %s)",
			c.Type, strings.Join(CommandTypes(), ", "))}
	}
	if err := checkID("id", c.ID); err != nil {
		return err
	}
	if err := checkID("tenant", c.Tenant); err != nil {
		return err
	}
	if err := checkID("app_id", c.AppID); err != nil {
		return err
	}
	switch c.Type {
	case CmdCreate:
		return checkText("name", c.Name, 1, MaxNameLen)
	case CmdSubmitVersion:
		if err := checkVersion("version", c.Version); err != nil {
			return err
		}
		return checkText("notes", c.Notes, 0, MaxNotesLen)
	case CmdApproveVersion, CmdPublishRelease:
		return checkVersion("version", c.Version)
	case CmdRejectVersion:
		if err := checkVersion("version", c.Version); err != nil {
			return err
		}
		return checkText("reason", c.Reason, 1, MaxReasonLen)
	case CmdGrant, CmdRevoke:
		return checkID("org", c.Org)
	}
	return nil
}

// checkID checks an id, tenant or organization with [events.ValidID]: they
// end up in subjects and keys.
func checkID(field, s string) error {
	if s == "" {
		return &ValidationError{Field: field, Reason: "is required"}
	}
	if !events.ValidID(s) {
		return &ValidationError{Field: field, Reason: "must be 1-128 characters of [A-Za-z0-9_-]"}
	}
	return nil
}

// checkVersion checks a version string: 1-64 characters of [0-9A-Za-z.+_-].
func checkVersion(field, v string) error {
	if v == "" {
		return &ValidationError{Field: field, Reason: "is required"}
	}
	ok := len(v) <= MaxVersionLen
	for i := 0; ok && i < len(v); i++ {
		c := v[i]
		ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			c == '.' || c == '+' || c == '_' || c == '-'
	}
	if !ok {
		return &ValidationError{Field: field, Reason: fmt.Sprintf("must be 1-%d characters of [0-9A-Za-z.+_-]", MaxVersionLen)}
	}
	return nil
}

// checkText checks free text: valid UTF-8 of min to max characters; when
// min > 0 it must not be blank.
func checkText(field, s string, min, max int) error {
	if !utf8.ValidString(s) {
		return &ValidationError{Field: field, Reason: "must be valid UTF-8"}
	}
	if min > 0 && strings.TrimSpace(s) == "" {
		return &ValidationError{Field: field, Reason: "is required"}
	}
	if n := utf8.RuneCountInString(s); n < min || n > max {
		return &ValidationError{Field: field, Reason: fmt.Sprintf("must be %d-%d characters, got %d", min, max, n)}
	}
	return nil
}
