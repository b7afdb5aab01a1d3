package redis

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

// backend starts a Redis server for one test and returns its address.
type backend struct {
	name  string
	start func(t testing.TB) string
}

// backends are the servers the store's behaviour is proven on: the real
// redis-server, and the embedded miniredis of the zero-setup mode.
func backends() []backend {
	return []backend{
		{name: "redis-server", start: func(t testing.TB) string { return testenv.StartRedis(t).Addr }},
		{name: "miniredis", start: func(t testing.TB) string {
			t.Helper()
			addr, stop, err := StartEmbedded()
			if err != nil {
				t.Fatalf("start embedded redis: %v", err)
			}
			t.Cleanup(stop)
			return addr
		}},
	}
}

// forEachBackend runs test as a subtest against a fresh server of every backend.
func forEachBackend(t *testing.T, test func(t *testing.T, client rueidis.Client)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { test(t, connect(t, b.start(t))) })
	}
}

func connect(t testing.TB, addr string) rueidis.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, ClientConfig{Addr: addr})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newStore(t testing.TB, client rueidis.CommandClient, prefix string) *Store {
	t.Helper()
	s, err := New(client, Config{Prefix: prefix})
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	return s
}

// timeout returns a context for one step of a test, so a broken server
// fails the test instead of hanging it.
func timeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(testenv.Context(t), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// group returns the launch group of app on day at consecutive positions
// from first, one per device.
func group(app, day string, first uint64, devices ...string) projections.LaunchGroup {
	g := projections.LaunchGroup{AppID: app, Day: day, Tenant: "org", Devices: devices}
	for i := range devices {
		g.Positions = append(g.Positions, first+uint64(i))
	}
	return g
}

// devices returns n device ids, "dev-0" to "dev-<n-1>".
func devices(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("dev-%d", i)
	}
	return out
}

// countingClient counts the calls (round trips) made through it.
type countingClient struct {
	rueidis.CommandClient
	do, doMulti atomic.Int64
}

func (c *countingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.do.Add(1)
	return c.CommandClient.Do(ctx, cmd)
}

func (c *countingClient) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	c.doMulti.Add(1)
	return c.CommandClient.DoMulti(ctx, cmds...)
}
