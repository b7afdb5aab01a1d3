package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// envelopeOf returns a valid envelope of typ carrying data.
func envelopeOf(typ string, version int, data string) Envelope {
	e := validEnvelope()
	e.Type, e.SchemaVersion, e.Data = typ, version, json.RawMessage(data)
	return e
}

func TestDomainDecodesEveryType(t *testing.T) {
	at := time.Date(2024, 2, 29, 12, 0, 0, 5e8, time.UTC)
	tests := []struct {
		typ  string
		data string
		want any
	}{
		{TypeAppCreated, `{"name":"Weather"}`, &AppCreated{Name: "Weather"}},
		{TypeVersionSubmitted, `{"version":"1.0.0","notes":"first"}`, &VersionSubmitted{Version: "1.0.0", Notes: "first"}},
		{TypeVersionApproved, `{"version":"1.0.0"}`, &VersionApproved{Version: "1.0.0"}},
		{TypeVersionRejected, `{"version":"1.0.0","reason":"crashes"}`, &VersionRejected{Version: "1.0.0", Reason: "crashes"}},
		{TypeReleasePublished, `{"version":"1.0.0"}`, &ReleasePublished{Version: "1.0.0"}},
		{TypeReleaseRolledBack, `{"from":"1.1.0","to":"1.0.0"}`, &ReleaseRolledBack{From: "1.1.0", To: "1.0.0"}},
		{TypeAppGranted, `{"org":"org-2"}`, &AppGranted{Org: "org-2"}},
		{TypeAppRevoked, `{"org":"org-2"}`, &AppRevoked{Org: "org-2"}},
		{TypeAppLaunched, `{"app_id":"app-1","version":"1.0.0","device_id":"dev-1","org":"org-2","at":"2024-02-29T12:00:00.5Z"}`,
			&AppLaunched{AppID: "app-1", Version: "1.0.0", DeviceID: "dev-1", Org: "org-2", At: at}},
	}
	r := Domain()
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			got, err := r.Decode(envelopeOf(tt.typ, 1, tt.data))
			if err != nil {
				t.Fatalf("Decode() = %v", err)
			}
			if l, ok := got.(*AppLaunched); ok {
				// Compare the instant; the decoded location need not be time.UTC.
				want := tt.want.(*AppLaunched)
				if !l.At.Equal(want.At) {
					t.Fatalf("At = %v, want %v", l.At, want.At)
				}
				c := *l
				c.At = want.At
				got = &c
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode() = %#v, want %#v", got, tt.want)
			}
		})
	}
	if len(tests) != len(r.Types()) {
		t.Fatalf("decoded %d types, registry holds %d", len(tests), len(r.Types()))
	}
}

func TestDecodeErrors(t *testing.T) {
	validLaunch := map[string]any{"app_id": "app-1", "version": "1", "device_id": "dev-1", "org": "org-1", "at": "2024-01-01T00:00:00Z"}
	launch := func(change func(m map[string]any)) string {
		m := map[string]any{}
		for k, v := range validLaunch {
			m[k] = v
		}
		change(m)
		b, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	tests := []struct {
		name    string
		env     Envelope
		want    error
		notWant []error
		fields  []string // FieldErrors expected in the chain
	}{
		{"unknown type", envelopeOf("app.exploded", 1, `{}`), ErrUnknownType, []error{ErrMalformed, ErrUnsupportedVersion}, nil},
		{"empty type", envelopeOf("", 1, `{}`), ErrUnknownType, []error{ErrMalformed, ErrUnsupportedVersion}, nil},
		{"unknown version", envelopeOf(TypeAppCreated, 2, `{"name":"x"}`), ErrUnsupportedVersion, []error{ErrMalformed, ErrUnknownType}, nil},
		{"version zero", envelopeOf(TypeAppCreated, 0, `{"name":"x"}`), ErrUnsupportedVersion, []error{ErrMalformed, ErrUnknownType}, nil},
		{"data not json", envelopeOf(TypeAppCreated, 1, `{"name":`), ErrMalformed, []error{ErrUnknownType, ErrUnsupportedVersion}, nil},
		{"data wrong shape", envelopeOf(TypeAppCreated, 1, `["name"]`), ErrMalformed, nil, nil},
		{"data field wrong type", envelopeOf(TypeAppCreated, 1, `{"name":42}`), ErrMalformed, nil, nil},
		{"data empty", envelopeOf(TypeAppGranted, 1, ``), ErrMalformed, nil, nil},
		{"launch at not a time", envelopeOf(TypeAppLaunched, 1, launch(func(m map[string]any) { m["at"] = "noon" })), ErrMalformed, nil, nil},
		{"launch without app_id", envelopeOf(TypeAppLaunched, 1, launch(func(m map[string]any) { delete(m, "app_id") })), ErrMalformed, nil, []string{"app_id"}},
		{"launch with bad app_id", envelopeOf(TypeAppLaunched, 1, launch(func(m map[string]any) { m["app_id"] = "app.1" })), ErrMalformed, nil, []string{"app_id"}},
		{"launch without device_id", envelopeOf(TypeAppLaunched, 1, launch(func(m map[string]any) { delete(m, "device_id") })), ErrMalformed, nil, []string{"device_id"}},
		{"launch without at", envelopeOf(TypeAppLaunched, 1, launch(func(m map[string]any) { delete(m, "at") })), ErrMalformed, nil, []string{"at"}},
		{"launch empty object", envelopeOf(TypeAppLaunched, 1, `{}`), ErrMalformed, nil, []string{"app_id", "device_id", "at"}},
		{"launch null", envelopeOf(TypeAppLaunched, 1, `null`), ErrMalformed, nil, []string{"app_id", "device_id", "at"}},
	}
	r := Domain()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := r.Decode(tt.env)
			if err == nil {
				t.Fatalf("Decode() = %#v, nil; want %v", v, tt.want)
			}
			if v != nil {
				t.Errorf("Decode() returned %#v with its error", v)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Decode() = %v, want it to wrap %v", err, tt.want)
			}
			for _, nw := range tt.notWant {
				if errors.Is(err, nw) {
					t.Errorf("Decode() = %v, should not wrap %v", err, nw)
				}
			}
			if !IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = false", err)
			}
			if !strings.Contains(err.Error(), tt.env.ID) {
				t.Errorf("error %q does not name event %q", err, tt.env.ID)
			}
			if got := fieldsOf(err); !slices.Equal(got, tt.fields) {
				t.Errorf("error names fields %v, want %v (err: %v)", got, tt.fields, err)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("connection reset"), false},
		{"conflict", ErrConflict, false},
		{"wrapped conflict", fmt.Errorf("apply: %w", ErrConflict), false},
		{"canceled", context.Canceled, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{"malformed", ErrMalformed, true},
		{"unknown type", ErrUnknownType, true},
		{"unsupported version", ErrUnsupportedVersion, true},
		{"wrapped malformed", fmt.Errorf("a: %w", fmt.Errorf("b: %w", ErrMalformed)), true},
		{"joined with transient", errors.Join(errors.New("io"), ErrUnknownType), true},
		{"same text, other error", errors.New(ErrMalformed.Error()), false},
	}
	for _, tt := range tests {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("%s: IsPermanent(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	r := NewRegistry()
	r.Register("thing.happened", 1, func() any { return new(AppCreated) })
	// Another version of the same type is fine.
	r.Register("thing.happened", 2, func() any { return new(AppCreated) })
	defer func() {
		p := recover()
		if p == nil {
			t.Fatal("second Register of thing.happened v2 did not panic")
		}
		msg := fmt.Sprint(p)
		if !strings.Contains(msg, "thing.happened") || !strings.Contains(msg, "v2") {
			t.Errorf("panic %q does not name the type and version", msg)
		}
	}()
	r.Register("thing.happened", 2, func() any { return new(AppCreated) })
}

func TestDomainRegistersEveryType(t *testing.T) {
	want := []string{
		TypeAppCreated, TypeVersionSubmitted, TypeVersionApproved, TypeVersionRejected,
		TypeReleasePublished, TypeReleaseRolledBack, TypeAppGranted, TypeAppRevoked, TypeAppLaunched,
	}
	slices.Sort(want)
	if got := Domain().Types(); !slices.Equal(got, want) {
		t.Fatalf("Domain().Types() = %v, want %v", got, want)
	}
	// Each Domain call builds its own registry, so registering more on one
	// does not panic and does not leak into the next.
	r := Domain()
	r.Register("extra.type", 1, func() any { return new(AppCreated) })
	if slices.Contains(Domain().Types(), "extra.type") {
		t.Fatal("Domain() shares state between calls")
	}
}

func TestTypesSorted(t *testing.T) {
	r := NewRegistry()
	if got := r.Types(); len(got) != 0 {
		t.Fatalf("empty registry Types() = %v", got)
	}
	for _, typ := range []string{"c", "a", "b"} {
		r.Register(typ, 1, func() any { return new(AppCreated) })
	}
	r.Register("a", 2, func() any { return new(AppCreated) })
	if got, want := r.Types(), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("Types() = %v, want %v", got, want)
	}
}

func TestDecodeUsesRegisteredVersion(t *testing.T) {
	type v1 struct {
		Name string `json:"name"`
	}
	type v2 struct {
		Title string `json:"title"`
	}
	r := NewRegistry()
	r.Register("thing", 1, func() any { return new(v1) })
	r.Register("thing", 2, func() any { return new(v2) })
	got1, err := r.Decode(envelopeOf("thing", 1, `{"name":"n"}`))
	if err != nil {
		t.Fatal(err)
	}
	got2, err := r.Decode(envelopeOf("thing", 2, `{"title":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got1, &v1{Name: "n"}) || !reflect.DeepEqual(got2, &v2{Title: "t"}) {
		t.Fatalf("Decode() = %#v, %#v", got1, got2)
	}
	// Each Decode returns a fresh value.
	again, _ := r.Decode(envelopeOf("thing", 1, `{"name":"m"}`))
	if got1.(*v1).Name != "n" || again.(*v1).Name != "m" {
		t.Fatalf("Decode reused its value: %#v, %#v", got1, again)
	}
}
