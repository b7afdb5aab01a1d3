package events

import (
	stdjson "encoding/json"
	"fmt"

	// goccy/go-json decodes an app.launched envelope 4× faster than
	// encoding/json (1.7 µs against 7.8 µs on this machine), and every
	// event a projection applies or a replay rebuilds is decoded.
	json "github.com/goccy/go-json"
	"github.com/tidwall/gjson"
)

// Marshal encodes an envelope as JSON after validating it.
func Marshal(e Envelope) ([]byte, error) {
	// json.Marshal checks Data itself (it compacts a RawMessage), so it is
	// scanned once; a failure is reported as Validate reports it.
	if err := e.validate(func([]byte) bool { return true }); err != nil {
		return nil, fmt.Errorf("marshal event %q: %w", e.ID, err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		if verr := e.Validate(); verr != nil {
			return nil, fmt.Errorf("marshal event %q: %w", e.ID, verr)
		}
		// Valid JSON that go-json will not compact: a number beyond
		// float64 (1e999). Unmarshal takes it, so Marshal must too.
		if b, err = stdjson.Marshal(e); err == nil {
			return b, nil
		}
		return nil, fmt.Errorf("marshal event %q: %w", e.ID, err)
	}
	return b, nil
}

// Unmarshal decodes and validates a JSON envelope. The error wraps
// [ErrMalformed] so callers can park the bytes instead of retrying.
func Unmarshal(b []byte) (Envelope, error) {
	if !decodable(b) {
		return Envelope{}, fmt.Errorf("%w: not valid JSON", ErrMalformed)
	}
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// go-json does not check a RawMessage's content, but Data is a value
	// of b, which is valid JSON: the rest of Validate remains.
	if err := e.validate(func([]byte) bool { return true }); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return e, nil
}

// decodable reports whether b may be handed to go-json's decoder: only
// valid JSON is. go-json v0.10.5 reads past the end of its input when the
// input ends within an escape in an object key (`{"\`): whatever memory
// follows is read as JSON, and under the race detector checkptr aborts the
// process. Its decoder is trusted with valid JSON only, whatever else it
// may do with the rest.
//
// gjson's validator accepts exactly what encoding/json.Valid accepts
// (FuzzDecodableMatchesEncodingJSON holds it to that) in a third of the
// time; with it, checking costs a third of a decode instead of a half.
func decodable(b []byte) bool { return gjson.ValidBytes(b) }
