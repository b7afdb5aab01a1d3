package events

import (
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"

	json "github.com/goccy/go-json" // see codec.go
)

// Errors returned by decoding. All three are permanent: retrying the same
// bytes cannot succeed.
var (
	// ErrMalformed: the bytes are not a valid envelope.
	ErrMalformed = errors.New("malformed event")
	// ErrUnknownType: the envelope's type is not registered.
	ErrUnknownType = errors.New("unknown event type")
	// ErrUnsupportedVersion: the type is known but not at this schema version.
	ErrUnsupportedVersion = errors.New("unsupported schema version")
)

// Registry maps event types and schema versions to their Go data types.
// It is built at start-up and read-only afterwards, so it is safe for
// concurrent use once built.
type Registry struct {
	types map[string]map[int]func() any
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{types: map[string]map[int]func() any{}}
}

// Register maps (typ, version) to a constructor of the data's Go type, which
// must return a pointer. Registering a pair twice panics: it is a wiring bug.
func (r *Registry) Register(typ string, version int, newData func() any) {
	vs := r.types[typ]
	if vs == nil {
		vs = map[int]func() any{}
		r.types[typ] = vs
	}
	if _, dup := vs[version]; dup {
		panic(fmt.Sprintf("events: %s v%d registered twice", typ, version))
	}
	vs[version] = newData
}

// Types lists the registered types, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.types))
	for t := range r.types {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Decode returns the envelope's data as its registered Go type (a pointer).
// It fails with [ErrUnknownType], [ErrUnsupportedVersion] or [ErrMalformed].
func (r *Registry) Decode(e Envelope) (any, error) {
	// go-json must not see some malformed input (see decodable).
	if !decodable(e.Data) {
		return nil, fmt.Errorf("decode event %s (%s): %w: data is not valid JSON", e.ID, e.Type, ErrMalformed)
	}
	return r.DecodeValid(e)
}

// DecodeValid is [Registry.Decode] for an envelope [Unmarshal] returned,
// whose Data it knows to be valid JSON: it skips checking that again (the
// check costs as much as decoding the data).
func (r *Registry) DecodeValid(e Envelope) (any, error) {
	vs, ok := r.types[e.Type]
	if !ok {
		return nil, fmt.Errorf("decode event %s: %w %q", e.ID, ErrUnknownType, e.Type)
	}
	newData, ok := vs[e.SchemaVersion]
	if !ok {
		return nil, fmt.Errorf("decode event %s: %w: %s v%d", e.ID, ErrUnsupportedVersion, e.Type, e.SchemaVersion)
	}
	// go-json keeps invalid UTF-8 in strings, where encoding/json puts U+FFFD.
	if !utf8.Valid(e.Data) {
		return nil, fmt.Errorf("decode event %s (%s): %w: data is not valid UTF-8", e.ID, e.Type, ErrMalformed)
	}
	v := newData()
	if err := json.Unmarshal(e.Data, v); err != nil {
		return nil, fmt.Errorf("decode event %s (%s): %w: %v", e.ID, e.Type, ErrMalformed, err)
	}
	if c, ok := v.(interface{ Check() error }); ok {
		if err := c.Check(); err != nil {
			return nil, fmt.Errorf("decode event %s (%s): %w: %w", e.ID, e.Type, ErrMalformed, err)
		}
	}
	return v, nil
}

// IsPermanent reports whether err means the event can never be decoded, so
// it must be dead-lettered rather than retried.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnknownType) || errors.Is(err, ErrUnsupportedVersion)
}
