package events

import (
	stdjson "encoding/json"
	"reflect"
	"testing"
)

// FuzzRegistryDecode decodes an envelope of arbitrary type, schema version
// and data with the reference domain's registry. Decode must never panic;
// when it fails, the error is permanent (the event is dead-lettered, not
// retried) and no value comes with it; when it succeeds, the value is a
// fresh pointer of the registered type, passes its Check, and, when the
// data is JSON, holds what encoding/json reads from it.
//
// kind picks a registered type (so that most inputs reach a data decoder);
// past the registered types, typ is used as it is.
func FuzzRegistryDecode(f *testing.F) {
	r := Domain()
	types := r.Types()
	kindOf := func(typ string) uint8 {
		for i, t := range types {
			if t == typ {
				return uint8(i)
			}
		}
		panic(typ)
	}
	add := func(typ string, version int, data string) {
		f.Add(kindOf(typ), "", version, []byte(data))
	}
	// Valid data of every type (from TestDomainDecodesEveryType).
	add(TypeAppCreated, 1, `{"name":"Weather"}`)
	add(TypeVersionSubmitted, 1, `{"version":"1.0.0","notes":"first"}`)
	add(TypeVersionApproved, 1, `{"version":"1.0.0"}`)
	add(TypeVersionRejected, 1, `{"version":"1.0.0","reason":"crashes"}`)
	add(TypeReleasePublished, 1, `{"version":"1.0.0"}`)
	add(TypeReleaseRolledBack, 1, `{"from":"1.1.0","to":"1.0.0"}`)
	add(TypeAppGranted, 1, `{"org":"org-2"}`)
	add(TypeAppRevoked, 1, `{"org":"org-2"}`)
	add(TypeAppLaunched, 1, `{"app_id":"app-1","version":"1.0.0","device_id":"dev-1","org":"org-2","at":"2024-02-29T12:00:00.5Z"}`)
	// Data a projection must not get (from TestDecodeErrors), and worse.
	add(TypeAppCreated, 1, `{"name":`)
	add(TypeAppCreated, 1, `["name"]`)
	add(TypeAppCreated, 1, `{"name":42}`)
	add(TypeAppGranted, 1, ``)
	add(TypeAppLaunched, 1, `{}`)
	add(TypeAppLaunched, 1, `null`)
	add(TypeAppLaunched, 1, `{"app_id":"app.1","device_id":"d","at":"2024-01-01T00:00:00Z"}`)
	add(TypeAppLaunched, 1, `{"app_id":"a","device_id":"d","at":"noon"}`)
	add(TypeAppLaunched, 1, `{"app_id":"a","device_id":"d","at":"0001-01-01T00:00:00Z"}`)
	add(TypeAppLaunched, 1, `{"app_id":"a","device_id":"d","at":"2024-01-01T00:00:00+24:00"}`)
	add(TypeAppLaunched, 1, `{"app_id":"a","device_id":"d","at":"2024-01-01T00:00:00Z","at":null}`)
	add(TypeAppLaunched, 1, `{"APP_ID":"a","Device_Id":"d","AT":"2024-01-01T00:00:00Z"}`)
	add(TypeAppLaunched, 1, `{"app_id":"a","device_id":"`+"\xff"+`","at":"2024-01-01T00:00:00Z"}`)
	add(TypeAppLaunched, 1, `{"\`)
	add(TypeAppLaunched, 1, `{"app_id\`)
	add(TypeAppLaunched, 1, `{"app_id":"a","\n`)
	add(TypeAppCreated, 1, `{"name":"x"}trailing`)
	add(TypeAppCreated, 1, `{"name":"\ud800\udc00\u0000"}`)
	add(TypeReleaseRolledBack, 1, `{"from":1e999}`)
	add(TypeAppCreated, 2, `{"name":"x"}`)
	add(TypeAppCreated, 0, `{"name":"x"}`)
	add(TypeAppCreated, -1, `{"name":"x"}`)
	f.Add(uint8(255), "app.exploded", 1, []byte(`{}`))
	f.Add(uint8(255), "", 1, []byte(`{}`))
	f.Add(uint8(255), "app.created\x00", 1, []byte(`{"name":"x"}`))

	f.Fuzz(func(t *testing.T, kind uint8, typ string, version int, data []byte) {
		if int(kind) < len(types) {
			typ = types[kind]
		}
		e := validEnvelope()
		e.Type, e.SchemaVersion, e.Data = typ, version, data
		v, err := r.Decode(e)
		if err != nil {
			if !IsPermanent(err) {
				t.Fatalf("Decode(%s v%d, %q) = %v: not permanent", typ, version, data, err)
			}
			if v != nil {
				t.Fatalf("Decode(%s v%d, %q) returned %#v with its error", typ, version, data, v)
			}
			return
		}
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer || rv.IsNil() {
			t.Fatalf("Decode(%s v%d, %q) = %#v, want a non-nil pointer", typ, version, data, v)
		}
		want := reflect.TypeOf(r.types[typ][version]())
		if rv.Type() != want {
			t.Fatalf("Decode(%s v%d) = %T, want %v", typ, version, v, want)
		}
		if c, ok := v.(interface{ Check() error }); ok {
			if err := c.Check(); err != nil {
				t.Fatalf("Decode(%s v%d, %q) = %+v, which fails its Check: %v", typ, version, data, v, err)
			}
		}
		// On data that is JSON, as Unmarshal and Validate leave it, go-json
		// must read what encoding/json reads. (On other data it is lax:
		// it takes {"nam0":00}. Decode trusts Data to be JSON, as
		// checking it again would double the cost of a decode.)
		if !stdjson.Valid(data) {
			return
		}
		std := reflect.New(want.Elem()).Interface()
		if err := stdjson.Unmarshal(data, std); err != nil {
			t.Fatalf("Decode(%s v%d, %q) accepted what encoding/json refuses: %v", typ, version, data, err)
		}
		if l, ok := v.(*AppLaunched); ok {
			s := std.(*AppLaunched)
			if !l.At.Equal(s.At) {
				t.Fatalf("Decode(%q): at %v, encoding/json reads %v", data, l.At, s.At)
			}
			c := *l
			c.At = s.At
			v = &c
		}
		if !reflect.DeepEqual(v, std) {
			t.Fatalf("Decode(%s v%d, %q) = %#v, encoding/json reads %#v", typ, version, data, v, std)
		}
	})
}
