package handlers

import (
	"context"
	"fmt"
	json "github.com/goccy/go-json" // see events/codec.go
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/evflow/evflow/events"
)

// MaxLaunchAhead is how far in the future a launch's time may lie, to allow
// for device clocks that run ahead.
const MaxLaunchAhead = 24 * time.Hour

// Launch is one app launch as reported by an app or SDK.
type Launch struct {
	// ID identifies the launch; the SDK should set it so a retried report is
	// deduplicated. [Service.Ingest] generates one when it is empty.
	ID string `json:"id"`
	// AppID is the app launched.
	AppID string `json:"app_id"`
	// Version is the version launched; optional, but well-formed when set.
	Version string `json:"version"`
	// DeviceID identifies the device, 1-128 characters.
	DeviceID string `json:"device_id"`
	// Org is the organization the app was launched under; it becomes the
	// event's tenant.
	Org string `json:"org"`
	// At is when the launch happened, at most [MaxLaunchAhead] after now.
	At time.Time `json:"at"`
}

// validate checks the launch at index i of a batch against now. Fields in
// the *[ValidationError] are named like "launches[3].device_id". An empty ID
// is accepted: the caller generates one.
func (l Launch) validate(i int, now time.Time) error {
	err := l.check(now)
	if ve, ok := err.(*ValidationError); ok {
		ve.Field = fmt.Sprintf("launches[%d].%s", i, ve.Field) // formatted only when at fault
	}
	return err
}

// check is validate, with fields named as in one launch.
func (l Launch) check(now time.Time) error {
	if l.ID != "" {
		if err := checkID("id", l.ID); err != nil {
			return err
		}
	}
	if err := checkID("app_id", l.AppID); err != nil {
		return err
	}
	if l.Version != "" {
		if err := checkVersion("version", l.Version); err != nil {
			return err
		}
	}
	if l.DeviceID == "" || len(l.DeviceID) > 128 {
		return &ValidationError{Field: "device_id", Reason: "must be 1-128 bytes"}
	}
	if !utf8.ValidString(l.DeviceID) {
		// JSON would carry it with U+FFFD in place of the bad bytes.
		return &ValidationError{Field: "device_id", Reason: "must be valid UTF-8"}
	}
	if err := checkID("org", l.Org); err != nil {
		return err
	}
	switch {
	case l.At.IsZero():
		return &ValidationError{Field: "at", Reason: "is required"}
	case l.At.After(now.Add(MaxLaunchAhead)):
		return &ValidationError{Field: "at", Reason: fmt.Sprintf("is more than %s in the future", MaxLaunchAhead)}
	case l.At.UTC().Year() < 0:
		// "0000-01-01T00:00:00+01:00" parses, but its event, in UTC,
		// could not be encoded (RFC 3339 years have 4 digits).
		return &ValidationError{Field: "at", Reason: "must be in year 0000 or later in UTC"}
	}
	return nil
}

// envelope returns the app.launched event of a validated launch with an
// id. The event occurred when the launch did; its aggregate is the app's
// usage, so it shares the app's partition but not its lifecycle position.
func (l Launch) envelope() (events.Envelope, error) {
	at := l.At.UTC()
	raw, err := json.Marshal(&events.AppLaunched{
		AppID: l.AppID, Version: l.Version, DeviceID: l.DeviceID, Org: l.Org, At: at,
	})
	if err != nil {
		return events.Envelope{}, fmt.Errorf("encode launch %s: %w", l.ID, err)
	}
	return events.Envelope{
		ID:            l.ID,
		Type:          events.TypeAppLaunched,
		SchemaVersion: SchemaVersion,
		Tenant:        l.Org,
		AggregateType: events.AggregateUsage,
		AggregateID:   l.AppID,
		OccurredAt:    at,
		Data:          raw,
	}, nil
}

// Ingest validates a batch of launches and appends their app.launched
// events in one call. It is all-or-nothing: if any launch is invalid, it
// returns a *[ValidationError] naming it (for example field
// "launches[2].at") and appends nothing; a batch larger than
// Config.MaxLaunchBatch fails with field "launches". Launches without an id
// get a generated one, so only launches with ids are deduplicated when
// retried. Ingest returns how many launches it appended (the broker may
// drop some as duplicates of earlier ids); an empty batch appends nothing.
func (s *Service) Ingest(ctx context.Context, launches []Launch) (int, error) {
	return Ingester{log: s.log, cfg: s.cfg}.Ingest(ctx, launches)
}

// Ingester validates launches and appends them: the part of [Service] that
// needs no read model, for publishers that write to the bus directly.
type Ingester struct {
	log Appender
	cfg Config
}

// NewIngester returns an ingester appending to log. It panics when log is
// nil or cfg is invalid, as [NewService] does.
func NewIngester(log Appender, cfg Config) Ingester {
	if log == nil {
		panic("handlers: NewIngester needs an Appender")
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg.setDefaults()
	return Ingester{log: log, cfg: cfg}
}

// Ingest is [Service.Ingest].
func (s Ingester) Ingest(ctx context.Context, launches []Launch) (int, error) {
	if len(launches) == 0 {
		return 0, nil
	}
	if len(launches) > s.cfg.MaxLaunchBatch {
		return 0, fmt.Errorf("ingest: %w", &ValidationError{Field: "launches",
			Reason: fmt.Sprintf("at most %d launches per batch, got %d", s.cfg.MaxLaunchBatch, len(launches))})
	}
	now := s.cfg.Now()
	for i, l := range launches {
		if err := l.validate(i, now); err != nil {
			return 0, fmt.Errorf("ingest: %w", err)
		}
	}
	envs := make([]events.Envelope, len(launches))
	for i, l := range launches {
		if l.ID == "" {
			l.ID = uuid.NewString()
		}
		env, err := l.envelope()
		if err != nil {
			return 0, fmt.Errorf("ingest: %w", err)
		}
		envs[i] = env
	}
	if _, err := s.log.Append(ctx, nil, envs...); err != nil {
		return 0, fmt.Errorf("ingest %d launches: append: %w", len(envs), err)
	}
	return len(envs), nil
}
