// Package events defines the envelope every evflow event travels in, its JSON
// codec, the registry of event types and schema versions, and the reference
// domain's event types (the app aggregate and its usage events).
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Envelope is the unit written to the stream. Everything but Data is
// metadata that the bus, the projections and operators can read without
// knowing the event type.
type Envelope struct {
	// ID identifies the event. Producers derive it deterministically (from a
	// command id or an SDK-generated id) so a retried publish is deduplicated.
	ID string `json:"id"`
	// Type names the event, for example "app.created"; see the Type constants.
	Type string `json:"type"`
	// SchemaVersion is the version of Data's schema for Type.
	SchemaVersion int `json:"schema_version"`
	// Tenant is the organization that owns the aggregate.
	Tenant string `json:"tenant"`
	// AggregateType and AggregateID name the ordering key: all events with
	// the same AggregateID go to one partition and are applied in order.
	AggregateType string `json:"aggregate_type"`
	AggregateID   string `json:"aggregate_id"`
	// OccurredAt is when the fact happened, as told by its producer.
	OccurredAt time.Time `json:"occurred_at"`
	// CorrelationID ties together everything caused by one request.
	CorrelationID string `json:"correlation_id,omitempty"`
	// CausationID is the id of the command or event that caused this one.
	CausationID string `json:"causation_id,omitempty"`
	// Data is the type-specific payload, decoded through a [Registry].
	Data json.RawMessage `json:"data"`
}

// Record is an envelope read back from the stream, with where it was read.
type Record struct {
	Envelope
	// Partition is the partition the event was stored in.
	Partition int
	// Position is the event's stream position: strictly increasing within a
	// partition, and so within an aggregate. Projections store the position
	// of the last event they applied and ignore anything not above it.
	Position uint64
}

// ValidID reports whether s is usable as an aggregate id, tenant or event
// id: 1-128 characters of [A-Za-z0-9_-]. They end up in broker subjects and
// store keys, so no dots, spaces or wildcards. (A loop, not a regular
// expression: every event decoded checks four.)
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// MaxData is the largest event data, in bytes, that an envelope may carry.
// The reference domain's events stay far below it (their fields have
// limits of their own); it bounds what any producer can put on the stream.
const MaxData = 64 << 10

// MaxText bounds, in bytes, the envelope's free-text fields: type,
// correlation and causation ids.
const MaxText = 256

// FieldError is a validation failure of one named field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Validate checks the metadata of an envelope. It returns a *FieldError
// (possibly several, joined) naming each field at fault.
func (e Envelope) Validate() error {
	return e.validate(json.Valid)
}

// validate is Validate with valid checking Data's JSON.
func (e Envelope) validate(valid func([]byte) bool) error {
	var errs []error
	check := func(ok bool, field, reason string) {
		if !ok {
			errs = append(errs, &FieldError{Field: field, Reason: reason})
		}
	}
	check(ValidID(e.ID), "id", "must be 1-128 characters of [A-Za-z0-9_-]")
	check(e.Type != "", "type", "is required")
	check(len(e.Type) <= MaxText, "type", "is over 256 bytes")
	check(len(e.CorrelationID) <= MaxText, "correlation_id", "is over 256 bytes")
	check(len(e.CausationID) <= MaxText, "causation_id", "is over 256 bytes")
	// go-json keeps invalid UTF-8 that encoding/json and Marshal replace
	// with U+FFFD: such a string would not survive a round trip.
	check(utf8.ValidString(e.Type), "type", "must be valid UTF-8")
	check(e.SchemaVersion > 0, "schema_version", "must be at least 1")
	check(ValidID(e.Tenant), "tenant", "must be 1-128 characters of [A-Za-z0-9_-]")
	check(ValidID(e.AggregateType), "aggregate_type", "must be 1-128 characters of [A-Za-z0-9_-]")
	check(ValidID(e.AggregateID), "aggregate_id", "must be 1-128 characters of [A-Za-z0-9_-]")
	check(!e.OccurredAt.IsZero(), "occurred_at", "is required")
	check(rfc3339(e.OccurredAt), "occurred_at", "must have a 4-digit year and a zone offset under 24 hours")
	check(utf8.ValidString(e.CorrelationID), "correlation_id", "must be valid UTF-8")
	check(utf8.ValidString(e.CausationID), "causation_id", "must be valid UTF-8")
	if len(e.Data) > MaxData {
		check(false, "data", "is over the limit of 65536 bytes (events.MaxData)")
	} else {
		check(len(e.Data) > 0 && valid(e.Data), "data", "must be a JSON value")
	}
	return errors.Join(errs...)
}

// rfc3339 reports whether t can be written in RFC 3339, as JSON writes
// times: time.Parse takes zone offsets of up to 99 hours, which
// time.Time.MarshalJSON refuses, so an envelope carrying one could be
// decoded but never encoded again.
func rfc3339(t time.Time) bool {
	_, off := t.Zone()
	y := t.Year()
	return 0 <= y && y <= 9999 && -24*3600 < off && off < 24*3600
}
