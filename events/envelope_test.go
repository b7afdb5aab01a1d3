package events

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// validEnvelope returns an envelope that passes Validate; each test case
// mutates its own copy.
func validEnvelope() Envelope {
	return Envelope{
		ID:            "evt-1",
		Type:          TypeAppCreated,
		SchemaVersion: 1,
		Tenant:        "org-1",
		AggregateType: AggregateApp,
		AggregateID:   "app-1",
		OccurredAt:    time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC),
		CorrelationID: "req-1",
		CausationID:   "cmd-1",
		Data:          json.RawMessage(`{"name":"Weather"}`),
	}
}

// fieldsOf returns the Field of every *FieldError in err's tree, in order.
func fieldsOf(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if fe, ok := err.(*FieldError); ok {
			out = append(out, fe.Field)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

func TestValidateAcceptsValidEnvelope(t *testing.T) {
	e := validEnvelope()
	if err := e.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	// Correlation and causation ids are optional.
	e.CorrelationID, e.CausationID = "", ""
	if err := e.Validate(); err != nil {
		t.Fatalf("Validate() without correlation/causation = %v, want nil", err)
	}
}

func TestValidateNamesEachBadField(t *testing.T) {
	id128 := strings.Repeat("a", 128)
	id129 := strings.Repeat("a", 129)
	tests := []struct {
		name   string
		mutate func(*Envelope)
		want   []string // fields named, in Validate's order; nil: valid
	}{
		{"id empty", func(e *Envelope) { e.ID = "" }, []string{"id"}},
		{"id with dot", func(e *Envelope) { e.ID = "evt.1" }, []string{"id"}},
		{"id with space", func(e *Envelope) { e.ID = "evt 1" }, []string{"id"}},
		{"id with wildcard", func(e *Envelope) { e.ID = "evt*" }, []string{"id"}},
		{"id with trailing newline", func(e *Envelope) { e.ID = "evt-1\n" }, []string{"id"}},
		{"id non-ascii", func(e *Envelope) { e.ID = "évt" }, []string{"id"}},
		{"id 128 chars", func(e *Envelope) { e.ID = id128 }, nil},
		{"data at the limit", func(e *Envelope) { e.Data = json.RawMessage(`"` + strings.Repeat("d", MaxData-2) + `"`) }, nil},
		{"data over the limit", func(e *Envelope) { e.Data = json.RawMessage(`"` + strings.Repeat("d", MaxData-1) + `"`) }, []string{"data"}},
		{"id 129 chars", func(e *Envelope) { e.ID = id129 }, []string{"id"}},
		{"type empty", func(e *Envelope) { e.Type = "" }, []string{"type"}},
		{"schema_version zero", func(e *Envelope) { e.SchemaVersion = 0 }, []string{"schema_version"}},
		{"schema_version negative", func(e *Envelope) { e.SchemaVersion = -1 }, []string{"schema_version"}},
		{"tenant empty", func(e *Envelope) { e.Tenant = "" }, []string{"tenant"}},
		{"tenant with dot", func(e *Envelope) { e.Tenant = "org.1" }, []string{"tenant"}},
		{"aggregate_type empty", func(e *Envelope) { e.AggregateType = "" }, []string{"aggregate_type"}},
		{"aggregate_type with gt", func(e *Envelope) { e.AggregateType = "app>" }, []string{"aggregate_type"}},
		{"aggregate_id empty", func(e *Envelope) { e.AggregateID = "" }, []string{"aggregate_id"}},
		{"aggregate_id 129 chars", func(e *Envelope) { e.AggregateID = id129 }, []string{"aggregate_id"}},
		{"occurred_at zero", func(e *Envelope) { e.OccurredAt = time.Time{} }, []string{"occurred_at"}},
		{"data nil", func(e *Envelope) { e.Data = nil }, []string{"data"}},
		{"data empty", func(e *Envelope) { e.Data = json.RawMessage{} }, []string{"data"}},
		{"data not json", func(e *Envelope) { e.Data = json.RawMessage(`{"name":`) }, []string{"data"}},
		{"data scalar is json", func(e *Envelope) { e.Data = json.RawMessage(`42`) }, nil},
		{"two fields", func(e *Envelope) { e.ID, e.Data = "", nil }, []string{"id", "data"}},
		{"everything", func(e *Envelope) { *e = Envelope{} }, []string{
			"id", "type", "schema_version", "tenant", "aggregate_type", "aggregate_id", "occurred_at", "data",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEnvelope()
			tt.mutate(&e)
			err := e.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors on %v", tt.want)
			}
			if got := fieldsOf(err); !slices.Equal(got, tt.want) {
				t.Fatalf("Validate() named fields %v, want %v (err: %v)", got, tt.want, err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("errors.As(%v, *FieldError) = false", err)
			}
			for _, f := range tt.want {
				if !strings.Contains(err.Error(), f+": ") {
					t.Errorf("error text %q does not name %q", err, f)
				}
			}
		})
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"a", true},
		{"A-z_0-9", true},
		{strings.Repeat("x", 128), true},
		{"", false},
		{strings.Repeat("x", 129), false},
		{"a.b", false},
		{"a b", false},
		{"a/b", false},
		{"a:b", false},
		{"a*", false},
		{"a>", false},
		{"\x00", false},
	}
	for _, tt := range tests {
		if got := ValidID(tt.in); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFieldErrorMessage(t *testing.T) {
	err := &FieldError{Field: "tenant", Reason: "is required"}
	if got, want := err.Error(), "tenant: is required"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}
