package replay

import (
	"testing"
	"time"
)

func TestParseFrom(t *testing.T) {
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in      string
		want    From
		str     string
		wantErr bool
	}{
		{in: "", want: From{}, str: "beginning"},
		{in: "beginning", want: From{}, str: "beginning"},
		{in: "1", want: From{Seq: 1}, str: "beginning"},
		{in: "4200", want: From{Seq: 4200}, str: "4200"},
		{in: "2026-11-23T08:00:00Z", want: From{Time: at}, str: "2026-11-23T08:00:00Z"},
		{in: "2026-11-23T09:00:00+01:00", want: From{Time: at}, str: "2026-11-23T08:00:00Z"},
		{in: "0", wantErr: true},
		{in: "-3", wantErr: true},
		{in: "yesterday", wantErr: true},
	} {
		got, err := ParseFrom(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseFrom(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.Seq != tc.want.Seq || !got.Time.Equal(tc.want.Time) {
			t.Errorf("ParseFrom(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if s := got.String(); s != tc.str {
			t.Errorf("ParseFrom(%q).String() = %q, want %q", tc.in, s, tc.str)
		}
		if back, err := ParseFrom(got.String()); err != nil || back.String() != got.String() {
			t.Errorf("ParseFrom(%q) does not round-trip: %+v, %v", got.String(), back, err)
		}
	}
}
