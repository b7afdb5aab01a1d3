package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/client"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/platform"
	"github.com/evflow/evflow/infra/testenv"
)

// waitTimeout bounds every wait on the replica's projections.
const waitTimeout = 30 * time.Second

// startReplica starts a real replica with everything embedded (NATS,
// FerretDB, in-memory Redis) on free ports, stopped when the test ends, and
// returns its base URL.
func startReplica(t *testing.T) string {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.AdminAPI = true
	cfg.NATSPort = -1
	level := slog.LevelWarn
	if os.Getenv("EVFLOW_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	app, r, err := platform.New(cfg, logger)
	if err != nil {
		t.Fatalf("new replica: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatalf("start replica: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := app.Stop(ctx); err != nil {
			t.Errorf("stop replica: %v", err)
		}
	})
	return "http://" + r.HTTPAddr
}

// newClient returns a client of base with short backoffs, so tests that
// retry stay fast.
func newClient(t *testing.T, base string, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithBackoff(5*time.Millisecond, 100*time.Millisecond)}, opts...)
	c, err := client.New(base, opts...)
	if err != nil {
		t.Fatalf("client.New(%q): %v", base, err)
	}
	return c
}

// countingTransport counts the requests sent through it, per method and path.
type countingTransport struct {
	mu sync.Mutex
	n  map[string]int
}

func (ct *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ct.mu.Lock()
	if ct.n == nil {
		ct.n = map[string]int{}
	}
	ct.n[req.Method+" "+req.URL.Path]++
	ct.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (ct *countingTransport) count(key string) int {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.n[key]
}

// mustSend sends cmd and fails the test unless it is accepted.
func mustSend(t *testing.T, ctx context.Context, c *client.Client, cmd handlers.Command) handlers.Result {
	t.Helper()
	res, err := c.Send(ctx, cmd)
	if err != nil {
		t.Fatalf("send %s: %v", cmd.Type, err)
	}
	return res
}

// waitApplied waits until the app's document reflects position pos: the
// document projection follows the stream asynchronously, and the server
// decides each command against that projection.
func waitApplied(t *testing.T, ctx context.Context, c *client.Client, appID string, pos uint64) {
	t.Helper()
	testenv.WaitFor(t, waitTimeout, func() error {
		app, err := c.App(ctx, appID)
		if err != nil {
			return err
		}
		if uint64(app.Position) < pos {
			return fmt.Errorf("app %s at position %d, want %d", appID, app.Position, pos)
		}
		return nil
	})
}

// apiError returns the *APIError in err, failing the test without one.
func apiError(t *testing.T, err error) *client.APIError {
	t.Helper()
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got error %v (%T), want an *APIError", err, err)
	}
	return apiErr
}

// status reads the replica's GET /v1/status.
func status(t *testing.T, ctx context.Context, base string) platform.Status {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/status", nil)
	if err != nil {
		t.Fatalf("status request: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/status: %v", err)
	}
	defer resp.Body.Close()
	var st platform.Status
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/status: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("GET /v1/status: decode: %v", err)
	}
	return st
}

// waitCaughtUp waits until every projection has applied every event of the
// stream (the stream is idle, so the projections' counts then hold).
func waitCaughtUp(t *testing.T, ctx context.Context, base string) platform.Status {
	t.Helper()
	var st platform.Status
	testenv.WaitFor(t, waitTimeout, func() error {
		st = status(t, ctx, base)
		for _, p := range st.Projections {
			var last uint64
			for _, cp := range p.Checkpoints {
				last = max(last, cp)
			}
			if last != st.StreamLast || p.Applied < st.StreamMessages {
				return fmt.Errorf("projection %s applied %d up to %d; stream has %d up to %d",
					p.Name, p.Applied, last, st.StreamMessages, st.StreamLast)
			}
		}
		return nil
	})
	return st
}

// launches returns n launches of appID on day 2024-05-01 from devices
// device-0 … device-(devices-1), without ids.
func launches(appID string, n, devices int) []handlers.Launch {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	ls := make([]handlers.Launch, n)
	for i := range ls {
		ls[i] = handlers.Launch{AppID: appID, Version: "1.0.0", DeviceID: fmt.Sprintf("device-%d", i%devices),
			Org: "acme", At: at.Add(time.Duration(i) * time.Second)}
	}
	return ls
}

// launchDay is the day of [launches].
const launchDay = "2024-05-01"
