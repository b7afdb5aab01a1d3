package handlers

import (
	"errors"
	"fmt"
)

// Sentinel errors of command handling. Handle and Decide wrap them with
// context, so match them with [errors.Is].
var (
	// ErrNotFound: the command names an app that does not exist (HTTP 404).
	ErrNotFound = errors.New("app not found")
	// ErrForbidden: the acting tenant does not own the app (HTTP 403).
	ErrForbidden = errors.New("tenant does not own the app")
)

// ValidationError is a malformed command or launch: one field is missing or
// ill-formed (HTTP 400). Nothing is appended when it is returned. Field is
// the JSON name of the field at fault, for example "version" or
// "launches[3].device_id".
type ValidationError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}

// Rules a command can break; see [RuleError].
const (
	// RuleAppExists: create names an app that already exists.
	RuleAppExists = "app_exists"
	// RuleVersionExists: submit names a version already submitted.
	RuleVersionExists = "version_exists"
	// RuleVersionNotSubmitted: approve or reject names a version that is not
	// awaiting review (unknown, or already approved or rejected).
	RuleVersionNotSubmitted = "version_not_submitted"
	// RuleVersionNotApproved: publish names a version that is not approved.
	RuleVersionNotApproved = "version_not_approved"
	// RuleAlreadyReleased: publish names the current release.
	RuleAlreadyReleased = "already_released"
	// RuleNoRelease: rollback of an app without a current release.
	RuleNoRelease = "no_release"
	// RuleAlreadyGranted: grant to an organization that already has a grant.
	RuleAlreadyGranted = "already_granted"
	// RuleNotGranted: revoke from an organization that has no grant.
	RuleNotGranted = "not_granted"
	// RuleGrantToOwner: grant to the organization that owns the app.
	RuleGrantToOwner = "grant_to_owner"
)

// RuleError is a well-formed command that the app's current state does not
// allow, an illegal transition (HTTP 409). Nothing is appended when it is
// returned. Rule is one of the Rule constants, for machines; Message
// explains it to humans.
type RuleError struct {
	Rule    string
	Message string
}

// Error implements error.
func (e *RuleError) Error() string { return e.Message }

// ruleErr builds a [RuleError] with a formatted message.
func ruleErr(rule, format string, args ...any) error {
	return &RuleError{Rule: rule, Message: fmt.Sprintf(format, args...)}
}
