package main

import (
	"bytes"
	"strings"
	"testing"
)

// A figure measured in several rounds is their median, and targets are
// judged on medians: one disturbed round moves neither.
func TestFiguresAreMediansOfTheirRounds(t *testing.T) {
	r := &results{}
	for _, v := range []float64{100, 40, 110} { // the second round was disturbed
		r.add("raw.ordered", "raw", "ordered read", v, "events/s")
	}
	for _, v := range []float64{60, 58, 20} {
		r.add("evflow.replay", "evflow", "replay", v, "events/s")
	}
	r.add("evflow.mongo.per_trip", "evflow", "per trip", 120, "events/trip")
	if got, _ := r.get("raw.ordered"); got != 100 {
		t.Errorf("raw.ordered = %v, want the median 100", got)
	}
	if len(r.Figures) != 3 || len(r.Figures[0].Samples) != 3 {
		t.Fatalf("figures %+v: want 3 figures, the first with 3 samples", r.Figures)
	}
	var replay target
	for _, tg := range targets {
		if tg.key == "evflow.replay" {
			replay = tg
		}
	}
	if got, ok := r.ratio(replay); !ok || got != 0.58 {
		t.Errorf("replay ratio %v, %v; want 58/100", got, ok)
	}
	r.add("evflow.replay", "evflow", "replay", 62, "events/s") // an even count: the mean of the middle two
	if got, _ := r.get("evflow.replay"); got != 59 {
		t.Errorf("median of 20, 58, 60, 62 = %v, want 59", got)
	}
	var out bytes.Buffer
	r.print(&out, nil, false)
	if !strings.Contains(out.String(), "40.00–110") || !strings.Contains(out.String(), "20.00–62.00") {
		t.Errorf("the table does not show the rounds' ranges:\n%s", out.String())
	}
}
