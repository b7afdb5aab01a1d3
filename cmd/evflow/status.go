package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/evflow/evflow/infra/platform"
)

// status prints a replica's view of partition ownership and projection
// progress: a table for people, or with --json the GET /v1/status body
// ([platform.Status]) for scripts.
func status(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	to := targetFlags(fs, "base URL of the replica's HTTP API (a replica knows the owner of its own partitions: ask each replica for the full picture)")
	asJSON := fs.Bool("json", false, "print the replica's status as JSON (the GET /v1/status body) for scripts")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q: status takes only --addr, --token and --json", fs.Arg(0))}
	}
	st, err := fetchStatus(ctx, to)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return writeStatus(stdout, st)
}

// writeStatus prints st for people: the replica and the stream, then a row
// per projection and partition (owner, checkpoint, head, lag), then a line
// per projection (generation, counters, dead letters). A value the replica
// did not report (a store that is down) is printed as "?"; an owner it does
// not know as "-".
func writeStatus(w io.Writer, st platform.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "replica:\t%s\n", st.Replica)
	fmt.Fprintf(tw, "bus:\t%s\n", st.Bus)
	fmt.Fprintf(tw, "partitions:\t%d, %d owned here: %s\n", st.Partitions, len(st.Owned), partitionList(st.Owned))
	fmt.Fprintf(tw, "stream events:\t%d, last position %d\n", st.StreamMessages, st.StreamLast)
	fmt.Fprintf(tw, "takeovers:\t%d\n", st.Takeovers)
	fmt.Fprintf(tw, "rebuilds:\t%d\n", st.Rebuilds)

	fmt.Fprintln(tw, "\nPROJECTION\tPARTITION\tOWNER\tCHECKPOINT\tHEAD\tLAG")
	unknown := false
	for _, ps := range st.Projections {
		for p := range max(st.Partitions, len(st.Heads)) {
			owner := ownerOf(st, p)
			unknown = unknown || owner == "-"
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", ps.Name, p, owner, at(ps.Checkpoints, p), at(st.Heads, p), at(ps.Lag, p))
		}
	}
	fmt.Fprintln(tw)
	for _, ps := range st.Projections {
		fmt.Fprintln(tw, projectionSummary(ps))
	}
	if unknown {
		fmt.Fprintln(tw, "\nowner -: not this replica's partition (another's, or between owners); run evflow status --addr against each replica for the full picture")
	}
	return tw.Flush()
}

// projectionSummary is one projection's line below the table.
func projectionSummary(ps platform.ProjectionStatus) string {
	gen := "original"
	if ps.Generation != "" {
		gen = ps.Generation
	}
	if ps.Rebuilding {
		gen += " (rebuilding)"
	}
	s := fmt.Sprintf("%s: generation %s; %d applied since start, %d skipped, %d parked; %d dead letters waiting",
		ps.Name, gen, ps.Applied, ps.Skipped, ps.Parked, ps.DeadLetters)
	if ps.Error != "" {
		s += "; " + ps.Error
	}
	return s
}

// ownerOf is the replica consuming partition p as st tells it, "-" if st
// does not say. Replicas that predate [platform.Status.Owners] report only
// Owned.
func ownerOf(st platform.Status, p int) string {
	if id, ok := st.Owners[p]; ok {
		return id
	}
	if slices.Contains(st.Owned, p) {
		return st.Replica
	}
	return "-"
}

// at formats xs[i], or "?" when xs is too short (not reported).
func at(xs []uint64, i int) string {
	if i < len(xs) {
		return strconv.FormatUint(xs[i], 10)
	}
	return "?"
}

// partitionList formats partitions compactly: "0-3,7,9-10", or "none".
func partitionList(ps []int) string {
	if len(ps) == 0 {
		return "none"
	}
	ps = slices.Sorted(slices.Values(ps))
	var b strings.Builder
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ps[i]))
		if j > i {
			fmt.Fprintf(&b, "-%d", ps[j])
		}
		i = j + 1
	}
	return b.String()
}

// fetchStatus asks the replica for its status.
func fetchStatus(ctx context.Context, to *target) (platform.Status, error) {
	var st platform.Status
	return st, to.call(ctx, http.MethodGet, "/v1/status", &st)
}
