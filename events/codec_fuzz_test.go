package events

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzUnmarshal feeds arbitrary bytes to Unmarshal, as a consumer receives
// them from the stream. Unmarshal must never panic (nor, under -race, read
// outside its input: go-json decodes with unchecked pointer arithmetic).
// A refusal wraps ErrMalformed, is permanent and returns no partial
// envelope. An accepted envelope validates, is what encoding/json reads
// from the same bytes (go-json is lax about raw control characters in
// strings, which encoding/json refuses), and survives Marshal then
// Unmarshal unchanged.
//
// Its seed corpus runs with every go test; look for more with
//
//	go test -run '^$' -fuzz FuzzUnmarshal -fuzztime 30s ./events
func FuzzUnmarshal(f *testing.F) {
	good, err := Marshal(validEnvelope())
	if err != nil {
		f.Fatal(err)
	}
	launch := validEnvelope()
	launch.Type, launch.AggregateType = TypeAppLaunched, AggregateUsage
	launch.Data = stdjson.RawMessage(`{"app_id":"app-1","version":"1.0.0","device_id":"d-1","org":"org-1","at":"2024-01-02T03:04:05.678Z"}`)
	goodLaunch, err := Marshal(launch)
	if err != nil {
		f.Fatal(err)
	}
	base := `"id":"a","type":"t","schema_version":1,"tenant":"x","aggregate_type":"app","aggregate_id":"a","occurred_at":"2026-01-01T00:00:00Z"`
	for _, s := range []string{
		string(good),
		string(goodLaunch),
		"", "null", "{}", "[]", `"str"`, "not json at all", string(good[:len(good)/2]),
		// Object keys cut short in an escape: go-json v0.10.5 steps over
		// the end of its input on these.
		`{"\`, `{"\\`, `{"\n`, `{"\u`, `{"\u00`, `{"a\`, `{"id":"a","\`, `{"id":"abcd","\"`,
		// Escapes in keys of complete documents.
		`{"\\":1}`, `{"\n":1}`, `{"i\u0064":"a"}`, `{"\q":1}`,
		// Duplicate and differently cased keys.
		`{` + base + `,"id":"b","data":{}}`,
		`{` + base + `,"ID":"b","DATA":{}}`,
		// Numbers at and past the edges.
		`{` + base + `,"schema_version":9223372036854775808,"data":{}}`,
		`{` + base + `,"schema_version":18446744073709551617,"data":{}}`,
		`{` + base + `,"schema_version":1e0,"data":{}}`,
		`{` + base + `,"schema_version":-0,"data":{}}`,
		`{` + base + `,"data":1.5e999}`,
		`{` + base + `,"data":-1e-400}`,
		// Times a parser takes and an encoder may not.
		`{` + base + `,"occurred_at":"2026-01-01T00:00:00+24:00","data":{}}`,
		`{` + base + `,"occurred_at":"0000-01-01T00:00:00+01:00","data":{}}`,
		`{` + base + `,"occurred_at":"9999-12-31T23:59:59-01:00","data":{}}`,
		// Invalid UTF-8, NULs, HTML and whitespace.
		`{` + base + `,"type":"t` + "\xff" + `","data":{}}`,
		`{` + base + `,"correlation_id":"` + "\xc3\x28" + `","data":{}}`,
		`{` + base + `,"causation_id":"\ud800","data":{}}`,
		`{` + base + `,"correlation_id":"\u0000","data":{}}`,
		`{` + base + `,"data":"` + "\xff" + `"}`,
		`{` + base + `,"data":"<&>\u2028"}`,
		`{` + base + `,"data":  { "a" : [ 1 , 2 ] }  }`,
		`{` + base + `,"data":null}`,
		// Data that is not JSON, and trailing data.
		`{` + base + `,"data":{"a":}}`,
		`{` + base + `,"data":tru}`,
		`{` + base + `,"data":{}}x`,
		`{` + base + `,"data":{}} {}`,
		// Deep nesting.
		`{` + base + `,"data":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
		`{` + base + `,"data":` + strings.Repeat(`{"a":`, 2000) + "1" + strings.Repeat("}", 2000) + `}`,
		strings.Repeat("[", 100000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || !IsPermanent(err) {
				t.Fatalf("Unmarshal(%q) = %v: not ErrMalformed, not permanent", b, err)
			}
			if !reflect.DeepEqual(e, Envelope{}) {
				t.Fatalf("Unmarshal(%q) returned %+v with its error", b, e)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("Unmarshal(%q) accepted an invalid envelope: %v", b, err)
		}
		// go-json must not read more into the bytes than encoding/json does.
		// It takes raw control characters in strings, which JSON has only
		// escaped: a lax reading, of a well-defined value (Data is checked
		// strictly).
		var std Envelope
		err = stdjson.Unmarshal(b, &std)
		var syntax *stdjson.SyntaxError
		if err != nil && !(errors.As(err, &syntax) && bytes.ContainsFunc(b, func(r rune) bool { return r < 0x20 })) {
			t.Fatalf("Unmarshal(%q) accepted what encoding/json refuses: %v", b, err)
		}
		if err == nil && !sameEnvelope(std, e) {
			t.Fatalf("Unmarshal(%q) = %+v, encoding/json reads %+v", b, e, std)
		}
		out, err := Marshal(e)
		if err != nil {
			t.Fatalf("Unmarshal(%q) accepted %+v, which Marshal refuses: %v", b, e, err)
		}
		back, err := Unmarshal(out)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(e)) = %v\ne = %+v\nMarshal(e) = %q", err, e, out)
		}
		if !sameEnvelope(back, e) {
			t.Fatalf("round trip changed the envelope:\n got %+v\nwant %+v", back, e)
		}
		if again, err := Marshal(back); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Marshal is not stable: %q, %v; first %q", again, err, out)
		}
	})
}

// sameEnvelope compares what an envelope means: its metadata exactly, its
// time as an instant and an offset, and its data as a JSON value (Marshal
// compacts data and escapes HTML in it).
func sameEnvelope(a, b Envelope) bool {
	_, aoff := a.OccurredAt.Zone()
	_, boff := b.OccurredAt.Zone()
	if aoff != boff || !a.OccurredAt.Equal(b.OccurredAt) {
		return false
	}
	ad, bd := a.Data, b.Data
	a.OccurredAt, a.Data, b.Data = b.OccurredAt, nil, nil
	return reflect.DeepEqual(a, b) && sameJSON(ad, bd)
}

// sameJSON reports whether a and b hold the same JSON value. Values
// encoding/json cannot hold in memory (nested too deep) compare by their
// compact form.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, erra := decodeAny(a)
	vb, errb := decodeAny(b)
	if erra != nil || errb != nil {
		var ca, cb bytes.Buffer
		return stdjson.Compact(&ca, a) == nil && stdjson.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
	}
	return reflect.DeepEqual(va, vb)
}

func decodeAny(b []byte) (any, error) {
	d := stdjson.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}
