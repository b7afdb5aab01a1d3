package events

import (
	"fmt"

	// goccy/go-json decodes an app.launched envelope 4× faster than
	// encoding/json (1.7 µs against 7.8 µs on this machine), and every
	// event a projection applies or a replay rebuilds is decoded.
	json "github.com/goccy/go-json"
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
			err = verr
		}
		return nil, fmt.Errorf("marshal event %q: %w", e.ID, err)
	}
	return b, nil
}

// Unmarshal decodes and validates a JSON envelope. The error wraps
// [ErrMalformed] so callers can park the bytes instead of retrying.
func Unmarshal(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// go-json does not check a RawMessage's content: Validate does.
	if err := e.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return e, nil
}
