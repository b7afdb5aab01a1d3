package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/evflow/evflow/infra/client"
)

// target is the replica API a command talks to: its base URL and the
// bearer token to send.
type target struct {
	addr  string
	token string
}

// targetFlags registers --addr and --token on fs.
func targetFlags(fs *flag.FlagSet, addrUsage string) *target {
	t := &target{}
	fs.StringVar(&t.addr, "addr", "http://127.0.0.1:8080", addrUsage)
	// The environment is read when the token is used, not as the flag's
	// default: flag prints defaults in -h and usage messages.
	fs.StringVar(&t.token, "token", "", "bearer token of the API, when the replica checks them (default: env EVFLOW_TOKEN, which keeps it out of ps)")
	return t
}

// bearer is the token to send: --token, else EVFLOW_TOKEN.
func (t *target) bearer() string {
	if t.token != "" {
		return t.token
	}
	return os.Getenv("EVFLOW_TOKEN")
}

// client returns an API client of t.
func (t *target) client() (*client.Client, error) {
	var opts []client.Option
	if tok := t.bearer(); tok != "" {
		opts = append(opts, client.WithToken(tok))
	}
	c, err := client.New(t.addr, opts...)
	if err != nil {
		return nil, usageError{fmt.Errorf("--addr: %w", err)}
	}
	return c, nil
}

// call sends method path to the replica and decodes a 2xx answer into out
// (when non-nil); another answer is an error quoting its body.
func (t *target) call(ctx context.Context, method, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, t.addr+path, nil)
	if err != nil {
		return usageError{fmt.Errorf("--addr %q: %w", t.addr, err)}
	}
	if tok := t.bearer(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s: %w", t.addr, err)
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
