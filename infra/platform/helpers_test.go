package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/platform"
	"github.com/evflow/evflow/infra/testenv"
)

// stand is the infrastructure that outlives replicas in a test: the data
// directory (embedded NATS and FerretDB) and a real redis-server.
type stand struct {
	cfg   config.Config
	redis *testenv.Redis
	mongo *testenv.Mongo // nil when the replica embeds FerretDB in DataDir
	kafka *testenv.Kafka // set on a Kafka stand
}

// onEachBus runs a conformance test on a stand of each event-log backend:
// JetStream (embedded NATS) and Kafka (kfake).
func onEachBus[T interface {
	testing.TB
	Run(string, func(T)) bool
}](t T, test func(t T, s *stand)) {
	for _, kind := range []string{config.BusJetStream, config.BusKafka} {
		t.Run(kind, func(t T) {
			s := newStand(t)
			if kind == config.BusKafka {
				s.kafka = testenv.StartKafka(t, 1)
				s.cfg.Bus, s.cfg.KafkaBrokers, s.cfg.KafkaSessionTimeout = config.BusKafka, s.kafka.Brokers(), time.Second
			}
			test(t, s)
		})
	}
}

// newStand prepares a stand on a real redis-server, a FerretDB outside the
// replica, and NATS embedded in the replica's data directory.
func newStand(t testing.TB) *stand {
	t.Helper()
	s := newEmbeddedStand(t)
	s.mongo = testenv.StartMongo(t)
	s.cfg.MongoURI = s.mongo.URI()
	s.cfg.MongoMaxBulk = 30
	return s
}

// newEmbeddedStand prepares a stand where the replica embeds NATS and
// FerretDB in its data directory, as `evflow serve` does with no flags.
func newEmbeddedStand(t testing.TB) *stand {
	t.Helper()
	r := testenv.StartRedis(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.AdminAPI = true
	cfg.NATSPort = -1
	cfg.RedisAddr = r.Addr
	cfg.Partitions = 4
	return &stand{cfg: cfg, redis: r}
}

// replica is one running evflow replica.
type replica struct {
	t    testing.TB
	app  *fx.App
	r    *platform.Replica
	base string
	// token, when set, is sent as the bearer token of every call.
	token string
}

func (s *stand) start(t testing.TB) *replica {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("EVFLOW_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	app, r, err := platform.New(s.cfg, logger)
	if err != nil {
		t.Fatalf("new replica: %v", err)
	}
	return run(t, app, r)
}

// run starts app, the replica r, and stops it when the test ends.
func run(t testing.TB, app *fx.App, r *platform.Replica) *replica {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatalf("start replica: %v", err)
	}
	rep := &replica{t: t, app: app, r: r, base: "http://" + r.HTTPAddr}
	t.Cleanup(rep.stop)
	return rep
}

// stop stops the replica; it is safe to call more than once.
func (r *replica) stop() {
	if r.app == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.app.Stop(ctx); err != nil {
		r.t.Errorf("stop replica: %v", err)
	}
	r.app = nil
}

// call sends a JSON request and decodes the JSON answer into out (if non-nil).
func (r *replica) call(method, path string, body any, out any) int {
	r.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			r.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		r.t.Fatalf("request: %v", err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			r.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// command sends a command and fails the test unless it is accepted.
func (r *replica) command(cmd map[string]any) {
	r.t.Helper()
	var res map[string]any
	for attempt := 0; ; attempt++ {
		code := r.call("POST", "/v1/commands", cmd, &res)
		if code == http.StatusOK {
			return
		}
		if code != http.StatusServiceUnavailable || attempt == 20 {
			r.t.Fatalf("command %v: %d %v", cmd, code, res)
		}
	}
}

func (r *replica) status() platform.Status {
	r.t.Helper()
	var st platform.Status
	if code := r.call("GET", "/v1/status", nil, &st); code != http.StatusOK {
		r.t.Fatalf("status: %d", code)
	}
	return st
}

// caughtUp waits until every projection has applied every partition up to
// its head.
func (r *replica) caughtUp() {
	r.t.Helper()
	testenv.WaitFor(r.t, 30*time.Second, func() error {
		st := r.status()
		for _, p := range st.Projections {
			if p.Error != "" {
				return fmt.Errorf("projection %s: %s", p.Name, p.Error)
			}
			for part, lag := range p.Lag {
				if lag > 0 {
					return fmt.Errorf("projection %s partition %d lags %d behind %d", p.Name, part, lag, st.Heads[part])
				}
			}
		}
		return nil
	})
}

// eventually polls path until check accepts the decoded answer.
func eventually[T any](r *replica, path string, check func(code int, v T) error) T {
	r.t.Helper()
	var v T
	testenv.WaitFor(r.t, 30*time.Second, func() error {
		var got T
		code := r.call("GET", path, nil, &got)
		if err := check(code, got); err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		v = got
		return nil
	})
	return v
}
