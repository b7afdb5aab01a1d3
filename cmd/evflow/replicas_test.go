package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evflow/evflow/infra/platform"
	"github.com/evflow/evflow/infra/testenv"
)

// cluster is a set of evflow replica processes sharing real infrastructure:
// an embedded nats-server, a redis-server and FerretDB, all on loopback.
type cluster struct {
	t        *testing.T
	bin      string
	nats     *testenv.NATS
	redis    *testenv.Redis
	mongo    *testenv.Mongo
	replicas map[string]*proc
	all      []*proc // every replica ever started, for logs
	mu       sync.Mutex
	// busFlags point replicas at the bus; tookLog is what a replica logs
	// when it takes partitions over.
	busFlags []string
	tookLog  string
}

// proc is one replica process.
type proc struct {
	id   string
	base string
	cmd  *exec.Cmd
	logs *logBuffer
	done chan error
	// token, when set, is the bearer token get and post send.
	token string
}

var buildOnce struct {
	sync.Once
	bin string
	err error
	out []byte
}

// binary builds the evflow binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := osMkdirTemp()
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.bin = filepath.Join(dir, "evflow")
		buildOnce.out, buildOnce.err = exec.Command("go", "build", "-o", buildOnce.bin, ".").CombinedOutput()
	})
	if buildOnce.err != nil {
		t.Fatalf("build evflow: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return buildOnce.bin
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: binary(t), nats: testenv.StartNATS(t), redis: testenv.StartRedis(t),
		mongo: testenv.StartMongo(t), replicas: map[string]*proc{}, tookLog: "took partition"}
	c.busFlags = []string{"--nats-url", c.nats.URL()}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, p := range c.all {
			for _, line := range strings.Split(p.logs.String(), "\n") {
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
					t.Logf("%s: %s", p.id, line)
				}
			}
		}
	})
	return c
}

// newKafkaCluster is a cluster whose replicas share a Kafka bus (kfake).
func newKafkaCluster(t *testing.T) *cluster {
	t.Helper()
	c := newCluster(t)
	k := testenv.StartKafka(t, 1)
	c.busFlags = []string{"--bus", "kafka", "--kafka-brokers", k.Brokers(), "--kafka-session-timeout", "3s"}
	c.tookLog = "partitions assigned"
	return c
}

// start runs a replica process on the shared bus and waits until it is
// ready; extra flags come after (and so override) the defaults.
func (c *cluster) start(id string, extra ...string) *proc {
	c.t.Helper()
	p := c.spawn(id, append(append([]string{}, c.busFlags...), extra...)...)
	c.ready(p)
	return p
}

// spawn runs a replica process without waiting for it: its own NATS flags
// come in extra.
func (c *cluster) spawn(id string, extra ...string) *proc {
	c.t.Helper()
	addr := freeAddr(c.t)
	args := append([]string{"serve", "--replica-id", id, "--http-addr", addr,
		"--redis-addr", c.redis.Addr, "--mongo-uri", c.mongo.URI(),
		"--partitions", "16", "--max-batch", "1000", "--lease-ttl", "3s", "--admin-api"}, extra...)
	cmd := exec.Command(c.bin, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	p := &proc{id: id, base: "http://" + addr, cmd: cmd, logs: &logBuffer{}, done: make(chan error, 1)}
	go p.logs.copy(stderr)
	go func() { p.done <- cmd.Wait() }()
	c.t.Cleanup(func() { _ = cmd.Process.Kill() })
	c.mu.Lock()
	c.all = append(c.all, p)
	c.mu.Unlock()
	return p
}

// ready waits until p answers /readyz, then counts it as live.
func (c *cluster) ready(p *proc) {
	c.t.Helper()
	testenv.WaitFor(c.t, 60*time.Second, func() error {
		resp, err := http.Get(p.base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s not ready: %s", p.id, resp.Status)
		}
		return nil
	})
	c.mu.Lock()
	c.replicas[p.id] = p
	c.mu.Unlock()
}

// kill sends sig to a replica and forgets it; SIGKILL is kill -9.
func (c *cluster) kill(p *proc, sig syscall.Signal) {
	c.t.Helper()
	c.mu.Lock()
	delete(c.replicas, p.id)
	c.mu.Unlock()
	if err := p.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %s: %v", p.id, err)
	}
}

// live lists the replicas not killed, in a stable order.
func (c *cluster) live() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*proc
	for _, id := range sortedKeys(c.replicas) {
		out = append(out, c.replicas[id])
	}
	return out
}

// send posts body to some live replica, moving to another one when a
// replica fails to answer; the ids in body make every retry safe.
func (c *cluster) send(ctx context.Context, path string, body any) (int, []byte) {
	c.t.Helper()
	js, _ := json.Marshal(body)
	began := time.Now()
	for attempt := 0; ; attempt++ {
		live := c.live()
		p := live[attempt%len(live)]
		reqCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		req, _ := http.NewRequestWithContext(reqCtx, http.MethodPost, p.base+path, bytes.NewReader(js))
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode < 500 {
				return resp.StatusCode, raw
			}
			err = fmt.Errorf("%s: %s", resp.Status, raw)
		}
		if ctx.Err() != nil || time.Since(began) > time.Minute {
			c.t.Errorf("POST %s never answered: %v", path, err)
			return 0, nil
		}
		time.Sleep(time.Duration(min(attempt+1, 10)) * 20 * time.Millisecond)
	}
}

// get decodes GET path from replica p.
func get(p *proc, path string, out any) (int, error) {
	return p.call(http.MethodGet, path, nil, out)
}

// call sends method path with body (nil for none) to p, with its token,
// and decodes a 200 answer into out when it is not nil.
func (p *proc) call(method, path string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequest(method, p.base+path, body)
	if err != nil {
		return 0, err
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

func (c *cluster) status(p *proc) (platform.Status, error) {
	var st platform.Status
	code, err := get(p, "/v1/status", &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("status %d", code)
	}
	return st, err
}

// owners waits until the live replicas own all 16 partitions between them,
// each at least one, and returns how long that took.
func (c *cluster) owners(timeout time.Duration) time.Duration {
	c.t.Helper()
	began := time.Now()
	testenv.WaitEvery(c.t, timeout, 50*time.Millisecond, func() error {
		total := 0
		for _, p := range c.live() {
			st, err := c.status(p)
			if err != nil {
				return err
			}
			if len(st.Owned) == 0 {
				return fmt.Errorf("%s owns nothing", p.id)
			}
			total += len(st.Owned)
		}
		if total != 16 {
			return fmt.Errorf("live replicas own %d of 16 partitions", total)
		}
		return nil
	})
	return time.Since(began)
}

// balanced waits until the live replicas own all 16 partitions, evenly.
func (c *cluster) balanced(timeout time.Duration) {
	c.t.Helper()
	testenv.WaitEvery(c.t, timeout, 50*time.Millisecond, func() error {
		live := c.live()
		total, lo, hi := 0, 16, 0
		for _, p := range live {
			st, err := c.status(p)
			if err != nil {
				return err
			}
			total, lo, hi = total+len(st.Owned), min(lo, len(st.Owned)), max(hi, len(st.Owned))
		}
		if total != 16 || hi-lo > 1 {
			return fmt.Errorf("%d replicas own %d partitions, %d to %d each", len(live), total, lo, hi)
		}
		return nil
	})
}

// caughtUp waits until no projection lags on any partition.
func (c *cluster) caughtUp(timeout time.Duration) platform.Status {
	c.t.Helper()
	var last platform.Status
	testenv.WaitEvery(c.t, timeout, time.Second, func() error {
		st, err := c.status(c.live()[0])
		if err != nil {
			return err
		}
		last = st
		for _, pr := range st.Projections {
			if pr.Error != "" {
				return fmt.Errorf("%s: %s", pr.Name, pr.Error)
			}
			for part, lag := range pr.Lag {
				if lag > 0 {
					return fmt.Errorf("%s lags %d on partition %d", pr.Name, lag, part)
				}
			}
		}
		return nil
	})
	return last
}

// appliedAtExit reads what a stopped replica's projections applied from its
// last log lines.
func appliedAtExit(t *testing.T, p *proc) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, line := range strings.Split(p.logs.String(), "\n") {
		if !strings.Contains(line, "projection stopped") {
			continue
		}
		var name string
		var n uint64
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "projection="); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(f, "applied="); ok {
				fmt.Sscan(v, &n)
			}
		}
		out[name] = n
	}
	return out
}

// lastLoggedAfter returns the time of the last log line containing msg
// that any of procs wrote after since, and whether there was one.
func lastLoggedAfter(t *testing.T, procs []*proc, msg string, since time.Time) (time.Time, bool) {
	t.Helper()
	var last time.Time
	for _, p := range procs {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			if !strings.Contains(line, msg) {
				continue
			}
			if at := logTime(t, line); at.After(since) && at.After(last) {
				last = at
			}
		}
	}
	return last, !last.IsZero()
}

// logTime is the time= field that starts a text log line (zero if none).
func logTime(t *testing.T, line string) time.Time {
	t.Helper()
	f, _, _ := strings.Cut(line, " ")
	v, ok := strings.CutPrefix(f, "time=")
	if !ok {
		return time.Time{}
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatalf("log time %q: %v", v, err)
	}
	return at
}

// loggedAt returns the time of the first log line of p containing msg.
func loggedAt(t *testing.T, p *proc, msg string) time.Time {
	t.Helper()
	for _, line := range strings.Split(p.logs.String(), "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		if at := logTime(t, line); !at.IsZero() {
			return at
		}
	}
	t.Fatalf("%s never logged %q:\n%s", p.id, msg, p.logs.String())
	return time.Time{}
}
