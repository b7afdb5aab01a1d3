package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/evflow/evflow/infra/platform"
)

func status(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "http://127.0.0.1:8080", "base URL of the replica's HTTP API")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	st, err := fetchStatus(ctx, *addr)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(stdout, "stream: %d events, last position %d, %d partitions\n\n", st.StreamMessages, st.StreamLast, st.Partitions)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tPARTITION\tCHECKPOINT")
	for _, p := range st.Projections {
		for part, pos := range p.Checkpoints {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", p.Name, part, pos)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range st.Projections {
		fmt.Fprintf(stdout, "\n%s: %d applied since start, %d parked; %d dead letters waiting", p.Name, p.Applied, p.Parked, p.DeadLetters)
	}
	fmt.Fprintln(stdout)
	return nil
}

// fetchStatus asks the replica at addr for its status.
func fetchStatus(ctx context.Context, addr string) (platform.Status, error) {
	var st platform.Status
	return st, apiCall(ctx, http.MethodGet, addr, "/v1/status", &st)
}

// apiCall sends method path to the replica at addr and decodes a 200 answer
// into out (nil: no body expected).
func apiCall(ctx context.Context, method, addr, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, addr+path, nil)
	if err != nil {
		return usageError{fmt.Errorf("--addr %q: %w", addr, err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, body)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}
