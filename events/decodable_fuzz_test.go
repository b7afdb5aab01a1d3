package events

import (
	"encoding/json"
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
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := decodable(b), json.Valid(b); got != want {
			t.Fatalf("decodable(%q) = %v, encoding/json.Valid says %v", b, got, want)
		}
	})
}
