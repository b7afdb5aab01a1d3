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
		fmt.Fprintf(stdout, "\n%s: %d applied since start, %d undecodable skipped", p.Name, p.Applied, p.Skipped)
	}
	fmt.Fprintln(stdout)
	return nil
}

// fetchStatus asks the replica at addr for its status.
func fetchStatus(ctx context.Context, addr string) (platform.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr+"/v1/status", nil)
	if err != nil {
		return platform.Status{}, usageError{fmt.Errorf("--addr %q: %w", addr, err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return platform.Status{}, fmt.Errorf("ask %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return platform.Status{}, fmt.Errorf("ask %s: %s: %s", addr, resp.Status, body)
	}
	var st platform.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return platform.Status{}, fmt.Errorf("decode status: %w", err)
	}
	return st, nil
}
