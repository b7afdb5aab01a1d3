package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMarshalUnmarshalRoundTrip(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*3600+30*60)
	tests := []struct {
		name string
		env  func() Envelope
	}{
		{"utc with nanoseconds", validEnvelope},
		{"other zone keeps instant and offset", func() Envelope {
			e := validEnvelope()
			e.OccurredAt = time.Date(2023, 12, 31, 23, 59, 59, 999999999, zone)
			return e
		}},
		{"no correlation or causation", func() Envelope {
			e := validEnvelope()
			e.CorrelationID, e.CausationID = "", ""
			return e
		}},
		{"nested raw data", func() Envelope {
			e := validEnvelope()
			e.Type = TypeAppLaunched
			e.Data = json.RawMessage(`{"app_id":"app-1","device_id":"d-1","at":"2024-01-02T03:04:05.678Z","extra":[1,2.5,null,{"k":"v\u00e9"}]}`)
			return e
		}},
		{"scalar data", func() Envelope {
			e := validEnvelope()
			e.Data = json.RawMessage(`"just a string"`)
			return e
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.env()
			b, err := Marshal(want)
			if err != nil {
				t.Fatalf("Marshal() = %v", err)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal(%s) = %v", b, err)
			}
			if !got.OccurredAt.Equal(want.OccurredAt) {
				t.Errorf("OccurredAt = %v, want %v", got.OccurredAt, want.OccurredAt)
			}
			_, gotOff := got.OccurredAt.Zone()
			_, wantOff := want.OccurredAt.Zone()
			if gotOff != wantOff {
				t.Errorf("OccurredAt offset = %d, want %d", gotOff, wantOff)
			}
			if !bytes.Equal(got.Data, want.Data) {
				t.Errorf("Data = %s, want %s", got.Data, want.Data)
			}
			// Everything else compares exactly once time and data are set aside.
			got.OccurredAt, want.OccurredAt = time.Time{}, time.Time{}
			got.Data, want.Data = nil, nil
			if !equalEnvelopes(got, want) {
				t.Errorf("round trip = %+v, want %+v", got, want)
			}
		})
	}
}

func equalEnvelopes(a, b Envelope) bool {
	return a.ID == b.ID && a.Type == b.Type && a.SchemaVersion == b.SchemaVersion &&
		a.Tenant == b.Tenant && a.AggregateType == b.AggregateType && a.AggregateID == b.AggregateID &&
		a.OccurredAt.Equal(b.OccurredAt) && a.CorrelationID == b.CorrelationID &&
		a.CausationID == b.CausationID && bytes.Equal(a.Data, b.Data)
}

// The JSON field names are data: events already on a stream are read with
// them. This pins the wire format.
func TestMarshalWireFormat(t *testing.T) {
	e := validEnvelope()
	e.CorrelationID = ""
	b, err := Marshal(e)
	if err != nil {
		t.Fatalf("Marshal() = %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("output is not a JSON object: %v: %s", err, b)
	}
	want := map[string]string{
		"id":             `"evt-1"`,
		"type":           `"app.created"`,
		"schema_version": `1`,
		"tenant":         `"org-1"`,
		"aggregate_type": `"app"`,
		"aggregate_id":   `"app-1"`,
		"occurred_at":    `"2024-05-06T07:08:09.123456789Z"`,
		"causation_id":   `"cmd-1"`,
		"data":           `{"name":"Weather"}`,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || string(got) != v {
			t.Errorf("field %q = %s (present %v), want %s", k, got, ok, v)
		}
	}
	if _, ok := m["correlation_id"]; ok {
		t.Errorf("empty correlation_id is written: %s", b)
	}
	if len(m) != len(want) {
		t.Errorf("got %d fields, want %d: %s", len(m), len(want), b)
	}
}

func TestMarshalRejectsInvalidEnvelope(t *testing.T) {
	e := validEnvelope()
	e.Tenant = "bad tenant"
	b, err := Marshal(e)
	if err == nil {
		t.Fatalf("Marshal() = %s, nil; want an error", b)
	}
	if b != nil {
		t.Errorf("Marshal() returned bytes %s with an error", b)
	}
	if got := fieldsOf(err); !slices.Equal(got, []string{"tenant"}) {
		t.Errorf("Marshal() error names %v, want [tenant] (err: %v)", got, err)
	}
}

func TestUnmarshalMalformed(t *testing.T) {
	good, err := Marshal(validEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	// without removes one top-level field from the good encoding.
	without := func(field string) []byte {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, field)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		in     []byte
		fields []string // fields named by the validation error, if any
	}{
		{"nil", nil, nil},
		{"empty", []byte{}, nil},
		{"garbage", []byte("not json at all"), nil},
		{"truncated", good[:len(good)/2], nil},
		{"array", []byte(`[1,2,3]`), nil},
		{"json null", []byte(`null`), []string{"id", "type", "schema_version", "tenant", "aggregate_type", "aggregate_id", "occurred_at", "data"}},
		{"empty object", []byte(`{}`), []string{"id", "type", "schema_version", "tenant", "aggregate_type", "aggregate_id", "occurred_at", "data"}},
		{"schema_version as string", bytes.Replace(good, []byte(`"schema_version":1`), []byte(`"schema_version":"1"`), 1), nil},
		{"occurred_at not a time", bytes.Replace(good, []byte(`"2024-05-06T07:08:09.123456789Z"`), []byte(`"yesterday"`), 1), nil},
		{"missing id", without("id"), []string{"id"}},
		{"missing type", without("type"), []string{"type"}},
		{"missing schema_version", without("schema_version"), []string{"schema_version"}},
		{"missing tenant", without("tenant"), []string{"tenant"}},
		{"missing aggregate_type", without("aggregate_type"), []string{"aggregate_type"}},
		{"missing aggregate_id", without("aggregate_id"), []string{"aggregate_id"}},
		{"missing occurred_at", without("occurred_at"), []string{"occurred_at"}},
		{"missing data", without("data"), []string{"data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Unmarshal(tt.in)
			if err == nil {
				t.Fatalf("Unmarshal(%q) = %+v, nil; want ErrMalformed", tt.in, e)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Unmarshal(%q) error %v does not wrap ErrMalformed", tt.in, err)
			}
			if !IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = false, want true", err)
			}
			if !equalEnvelopes(e, Envelope{}) {
				t.Errorf("Unmarshal returned a partial envelope %+v with its error", e)
			}
			if tt.fields != nil {
				if got := fieldsOf(err); !slices.Equal(got, tt.fields) {
					t.Errorf("error names fields %v, want %v (err: %v)", got, tt.fields, err)
				}
			}
		})
	}
}

func TestUnmarshalIgnoresUnknownFields(t *testing.T) {
	b, err := Marshal(validEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	b = append([]byte(`{"added_in_a_later_release":true,`), b[1:]...)
	e, err := Unmarshal(b)
	if err != nil {
		t.Fatalf("Unmarshal(%s) = %v", b, err)
	}
	if e.ID != "evt-1" {
		t.Errorf("ID = %q, want evt-1", e.ID)
	}
}

// The decoder (goccy/go-json) does not check a RawMessage's content by
// itself: envelopes whose data is not JSON are still malformed.
func TestUnmarshalRefusesDataThatIsNotJSON(t *testing.T) {
	for _, data := range []string{`{"a":}`, `[1,`, `tru`} {
		raw := `{"id":"a","type":"t","schema_version":1,"tenant":"x","aggregate_type":"app","aggregate_id":"a","occurred_at":"2026-01-01T00:00:00Z","data":` + data + `}`
		if _, err := Unmarshal([]byte(raw)); !errors.Is(err, ErrMalformed) {
			t.Errorf("data %s: got %v, want ErrMalformed", data, err)
		}
	}
	e := Envelope{ID: "a", Type: "t", SchemaVersion: 1, Tenant: "x", AggregateType: "app", AggregateID: "a", OccurredAt: time.Now(), Data: []byte(`{"a":`)}
	var fe *FieldError
	if _, err := Marshal(e); !errors.As(err, &fe) || fe.Field != "data" {
		t.Errorf("marshal of data that is not JSON: %v, want a FieldError on data", err)
	}
}

// TestDataOverTheLimit checks that an event whose data is over MaxData is
// neither encoded nor decoded: a consumer gets ErrMalformed and parks it.
func TestDataOverTheLimit(t *testing.T) {
	e := validEnvelope()
	e.Data = json.RawMessage(`"` + string(bytes.Repeat([]byte("d"), MaxData)) + `"`)
	if _, err := Marshal(e); err == nil {
		t.Fatal("Marshal took data over the limit")
	}
	raw, err := json.Marshal(e) // another producer, without the check
	if err != nil {
		t.Fatal(err)
	}
	var fe *FieldError
	if _, err := Unmarshal(raw); !errors.Is(err, ErrMalformed) || !errors.As(err, &fe) || fe.Field != "data" {
		t.Fatalf("Unmarshal = %v, want ErrMalformed naming data", err)
	}
}

// TestMarshalRefusesWhatUnmarshalRefuses: an event Marshal encodes is one
// Unmarshal decodes, even when escaping grows its data past the limit, or
// its data nests too deep, or its text fields are long.
func TestMarshalRefusesWhatUnmarshalRefuses(t *testing.T) {
	deep := strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1)
	for name, mutate := range map[string]func(*Envelope){
		"escaping grows it past the limit": func(e *Envelope) {
			e.Data = json.RawMessage(`"` + strings.Repeat("<", MaxData-2) + `"`)
		},
		"nested past 10000 levels": func(e *Envelope) { e.Data = json.RawMessage(deep) },
		"a long type":              func(e *Envelope) { e.Type = strings.Repeat("t", MaxText+1) },
		"a long correlation id":    func(e *Envelope) { e.CorrelationID = strings.Repeat("c", MaxText+1) },
	} {
		e := validEnvelope()
		mutate(&e)
		b, err := Marshal(e)
		if err == nil {
			if _, uerr := Unmarshal(b); uerr != nil {
				t.Errorf("%s: Marshal took it, Unmarshal refuses it: %v", name, uerr)
			} else {
				t.Errorf("%s: Marshal took it", name)
			}
		}
	}
}
