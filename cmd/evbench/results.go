package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Figure is one measured number: the median of its samples, one a round.
type Figure struct {
	// Key names the figure for targets and JSON, e.g. "raw.publish".
	Key string `json:"key"`
	// Group is "raw", "naive" or "evflow"; Name says what was measured.
	Group   string    `json:"group"`
	Name    string    `json:"name"`
	Value   float64   `json:"value"`
	Unit    string    `json:"unit"`
	Samples []float64 `json:"samples"`
}

// results collects the figures of a run.
type results struct {
	mu      sync.Mutex
	Figures []Figure
	Took    time.Duration
}

// add records a sample of a figure; the figure's value is the median of
// its samples.
func (r *results) add(key, group, name string, value float64, unit string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.Figures, func(f Figure) bool { return f.Key == key })
	if i < 0 {
		r.Figures = append(r.Figures, Figure{Key: key, Group: group, Name: name, Unit: unit})
		i = len(r.Figures) - 1
	}
	f := &r.Figures[i]
	f.Samples = append(f.Samples, value)
	f.Value = median(f.Samples)
}

// median returns the middle of vs (the mean of the two middle ones when
// their number is even).
func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// get returns the value of the figure key and whether it was measured.
func (r *results) get(key string) (float64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.Figures {
		if f.Key == key {
			return f.Value, true
		}
	}
	return 0, false
}

// target is a promise the README makes, as a ratio of two figures of the
// same run (or a floor on one figure when of is "").
type target struct {
	name     string
	key, of  string
	atLeast  float64 // ratio key/of must be ≥ atLeast (when > 0)
	atMost   float64 // ratio key/of must be ≤ atMost (when > 0)
	absolute bool    // compare key itself, not a ratio
}

// targets are issue 7's, in its table's order.
var targets = []target{
	{name: "SDK publish, acknowledged ≥ 0.75 × raw async publish", key: "evflow.publish", of: "raw.publish", atLeast: 0.75},
	{name: "backlog drain into Redis ≥ 0.6 × raw consume + ack", key: "evflow.drain", of: "raw.consume", atLeast: 0.6},
	{name: "backlog drain into Redis ≥ 6 × naive Watermill", key: "evflow.drain", of: "naive.consume", atLeast: 6},
	{name: "live end to end ≥ 0.5 × raw async publish, sustained", key: "evflow.live", of: "raw.publish", atLeast: 0.5},
	{name: "p99 publish → projected ≤ 3 × raw publish → receive p99", key: "evflow.latency.p99", of: "raw.latency.p99", atMost: 3},
	{name: "MongoDB events per round trip at saturation ≥ 100", key: "evflow.mongo.per_trip", atLeast: 100, absolute: true},
	{name: "replay rebuild into Redis ≥ 0.5 × raw ordered read", key: "evflow.replay", of: "raw.ordered", atLeast: 0.5},
}

// ratio returns t's measured ratio (or value) and whether both figures exist.
func (r *results) ratio(t target) (float64, bool) {
	v, ok := r.get(t.key)
	if !ok || t.absolute {
		return v, ok
	}
	of, ok := r.get(t.of)
	if !ok || of == 0 {
		return 0, false
	}
	return v / of, true
}

// check returns the targets missed (or not measured).
func (r *results) check() []string {
	var missed []string
	for _, t := range targets {
		got, ok := r.ratio(t)
		switch {
		case !ok:
			missed = append(missed, t.name+": not measured")
		case t.atLeast > 0 && got < t.atLeast:
			missed = append(missed, fmt.Sprintf("%s: got %.2f", t.name, got))
		case t.atMost > 0 && got > t.atMost:
			missed = append(missed, fmt.Sprintf("%s: got %.2f", t.name, got))
		}
	}
	return missed
}

// report is the JSON form of a run.
type report struct {
	Figures []Figure      `json:"figures"`
	Targets []targetState `json:"targets"`
	Seconds float64       `json:"seconds"`
	Missed  []string      `json:"missed"`
}

type targetState struct {
	Name string  `json:"name"`
	Got  float64 `json:"got"`
	Met  bool    `json:"met"`
}

func (r *results) report(missed []string) report {
	out := report{Figures: r.Figures, Seconds: r.Took.Seconds(), Missed: missed}
	for _, t := range targets {
		got, ok := r.ratio(t)
		met := ok && (t.atLeast == 0 || got >= t.atLeast) && (t.atMost == 0 || got <= t.atMost)
		out.Targets = append(out.Targets, targetState{Name: t.name, Got: got, Met: met})
	}
	if out.Missed == nil {
		out.Missed = []string{}
	}
	return out
}

// print writes the figures and the targets as two tables.
func (r *results) print(w io.Writer, missed []string, smoke bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "group\tfigure\tvalue\tunit\trounds' range\t")
	for _, f := range r.Figures {
		spread := "-"
		if len(f.Samples) > 1 {
			spread = format(slices.Min(f.Samples)) + "–" + format(slices.Max(f.Samples))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", f.Group, f.Name, format(f.Value), f.Unit, spread)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmeasured\t")
	for _, t := range targets {
		got, ok := r.ratio(t)
		state := "met"
		switch {
		case smoke:
			state = "(smoke run: not judged)"
		case !ok:
			state = "NOT MEASURED"
		case (t.atLeast > 0 && got < t.atLeast) || (t.atMost > 0 && got > t.atMost):
			state = "MISSED"
		}
		val := "-"
		if ok {
			val = fmt.Sprintf("%.2f", got)
			if !t.absolute {
				val += "×"
			}
		}
		fmt.Fprintf(tw, "%s\t%s %s\t\n", t.name, val, state)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d figures in %s; %d targets missed\n", len(r.Figures), r.Took.Round(time.Second), len(missed))
}

func format(v float64) string {
	switch {
	case v >= 100:
		return strings.TrimSuffix(fmt.Sprintf("%.0f", v), ".0")
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}
