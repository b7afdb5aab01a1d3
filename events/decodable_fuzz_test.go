package events

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodableMatchesEncodingJSON holds decodable to encoding/json's
// idea of valid JSON, the one go-json is safe with.
func FuzzDecodableMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","data":{"k":[1,2.5e3,-0,true,false,null,"\u00e9\n"]}}`,
		`{"\`, `{"\u`, `{"a\"`, `"\x"`, `01`, `1.`, `-`, `[1,]`, `{"a":1,}`, "\"\x01\"", "\"\xff\"",
		` {"a" : [ ] } `, `{}x`, `[[[[[[[[[[]]]]]]]]]]`, `1e`, `"\ud800"`, `tru`, `nul`,
	} {
		f.Add([]byte(s))
	}
	// Nesting at and past encoding/json's limit of 10,000 levels.
	for _, n := range []int{maxNesting, maxNesting + 1, 50000} {
		f.Add([]byte(strings.Repeat("[", n) + strings.Repeat("]", n)))
		f.Add([]byte(`{"a":` + strings.Repeat(`{"a":`, n-1) + "1" + strings.Repeat("}", n)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := decodable(b), json.Valid(b); got != want {
			t.Fatalf("decodable(%q) = %v, encoding/json.Valid says %v", b, got, want)
		}
	})
}
