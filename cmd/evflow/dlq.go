package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/infra/projector"
)

const dlqUsage = `usage: evflow dlq list|show|redrive|purge [flags]

  list     the dead letters, in the order they were parked
  show     one letter, with its event (--seq)
  redrive  apply the letters again, in order; each applied one is removed
  purge    remove letters: one (--seq) or all of a projection (--projection), or all (--all)
`

// dlq administers dead letters through a replica's API.
func dlq(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return usageError{fmt.Errorf("a subcommand is required")}
	}
	sub := args[0]
	fs := flag.NewFlagSet("dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	to := targetFlags(fs, "base URL of the replica's HTTP API")
	projection := fs.String("projection", "", "only this projection's letters (apps, daily_stats, redis)")
	seq := fs.Uint64("seq", 0, "a letter's sequence number on the dead-letter stream (see list)")
	all := fs.Bool("all", false, "purge: every projection's letters")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := fs.Parse(args[1:]); err != nil {
		return usageErr(err)
	}
	q := ""
	if *projection != "" {
		q = "?projection=" + url.QueryEscape(*projection)
	}
	switch sub {
	case "list":
		var out struct{ Letters []httpapi.Letter }
		if err := to.call(ctx, http.MethodGet, "/v1/dlq"+q, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, out.Letters)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tPROJECTION\tPARTITION\tPOSITION\tAGGREGATE\tATTEMPTS\tREASON")
		for _, l := range out.Letters {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s/%s\t%d\t%s\n", l.Seq, l.Projection, l.Partition, l.Position, l.AggregateType, l.AggregateID, l.Attempts, l.Reason)
		}
		return tw.Flush()
	case "show":
		if *seq == 0 {
			return usageError{fmt.Errorf("--seq is required")}
		}
		var l httpapi.Letter
		if err := to.call(ctx, http.MethodGet, "/v1/dlq/"+strconv.FormatUint(*seq, 10), &l); err != nil {
			return err
		}
		return printJSON(stdout, l)
	case "redrive":
		var out struct{ Results []projector.RedriveResult }
		if err := to.call(ctx, http.MethodPost, "/v1/dlq/redrive"+q, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, out.Results)
		}
		for _, r := range out.Results {
			fmt.Fprintf(stdout, "%s: %d redriven, %d kept\n", r.Projection, r.Redriven, r.Kept)
			for _, e := range r.Errors {
				fmt.Fprintf(stdout, "  %s\n", e)
			}
		}
		return nil
	case "purge":
		switch {
		case *seq != 0:
			return to.call(ctx, http.MethodDelete, "/v1/dlq/"+strconv.FormatUint(*seq, 10), nil)
		case *projection == "" && !*all:
			return usageError{fmt.Errorf("say what to purge: --seq, --projection or --all")}
		}
		var out struct{ Purged uint64 }
		if err := to.call(ctx, http.MethodDelete, "/v1/dlq"+q, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "purged %d letters\n", out.Purged)
		return nil
	default:
		fmt.Fprint(stderr, dlqUsage)
		return usageError{fmt.Errorf("unknown subcommand %q", sub)}
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
