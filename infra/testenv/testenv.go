// Package testenv starts the real components evflow's tests run against:
// an embedded nats-server with JetStream, a real redis-server process, and
// an embedded FerretDB speaking the MongoDB wire protocol. Every helper takes
// a testing.TB, registers its own cleanup, and fails the test with a clear
// message when a component is missing; nothing is skipped.
package testenv

import (
	"context"
	"fmt"
	"net"

	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/evflow/evflow/infra/ferret"
	"github.com/evflow/evflow/infra/natsd"
)

// NATS is an embedded single-node nats-server with JetStream.
type NATS struct {
	*server.Server
	Dir string
}

// URL is the client URL of the server.
func (n *NATS) URL() string { return n.ClientURL() }

// StartNATS starts an embedded nats-server with JetStream storing in a
// temporary directory, shut down when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	dir := t.TempDir()
	s, err := natsd.Start(natsd.Config{Dir: dir, Port: -1})
	if err != nil {
		t.Fatalf("testenv: start nats-server: %v", err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return &NATS{Server: s, Dir: dir}
}

// RestartNATS shuts n down and starts a new server on the same port and
// store directory, as a process restart would.
func RestartNATS(t testing.TB, n *NATS) *NATS {
	t.Helper()
	return RestartNATSAfter(t, n, 0)
}

// RestartNATSAfter is [RestartNATS] with the server down for at least down.
func RestartNATSAfter(t testing.TB, n *NATS, down time.Duration) *NATS {
	t.Helper()
	port := n.Addr().(*net.TCPAddr).Port
	n.Shutdown()
	n.WaitForShutdown()
	time.Sleep(down)
	s, err := natsd.Start(natsd.Config{Dir: n.Dir, Port: port})
	if err != nil {
		t.Fatalf("testenv: restart nats-server: %v", err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return &NATS{Server: s, Dir: n.Dir}
}

// Redis is a redis-server process on a free loopback port, without persistence.
type Redis struct {
	Addr string
	t    testing.TB
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// StartRedis starts a real redis-server on a free port, killed when the test
// ends. It fails the test if redis-server is not installed.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testenv: redis-server not found on PATH: install it with `apt-get install redis-server` " +
			"(the README's test command, `task test` / .ci/run, does this)")
	}
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), t: t}
	r.start(bin)
	t.Cleanup(r.Stop)
	return r
}

func (r *Redis) start(bin string) {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	dir := r.t.TempDir()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("testenv: start redis-server: %v", err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	waitDial(r.t, r.Addr, "redis-server")
}

// Stop kills the server (SIGKILL: its data, never persisted, is gone).
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGCONT) // a paused process still dies, but let it
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// Pause freezes the server (SIGSTOP): connections stay open, nothing is
// answered, as in a long GC pause or a partition. Resume undoes it.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume thaws a paused server (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		r.t.Fatalf("testenv: redis-server is not running")
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("testenv: signal redis-server: %v", err)
	}
}

// Restart kills the server and starts an empty one on the same address.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	bin, _ := exec.LookPath("redis-server")
	r.start(bin)
}

// Mongo is an embedded FerretDB (SQLite backend) speaking the MongoDB wire protocol.
type Mongo struct {
	*ferret.Server
	Dir string
}

// StartMongo starts an embedded FerretDB storing in a temporary directory.
func StartMongo(t testing.TB) *Mongo {
	t.Helper()
	dir := t.TempDir()
	s, err := ferret.Start(dir, nil)
	if err != nil {
		t.Fatalf("testenv: start FerretDB: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &Mongo{Server: s, Dir: dir}
}

// WaitFor polls cond every 20ms until it returns nil or timeout passes,
// then fails the test with cond's last error.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	WaitEvery(t, timeout, 20*time.Millisecond, cond)
}

// WaitEvery is WaitFor polling every interval, for conditions that are
// costly to check.
func WaitEvery(t testing.TB, timeout, every time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
		}
		time.Sleep(every)
	}
}

// Context returns a context cancelled when the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitDial(t testing.TB, addr, what string) {
	t.Helper()
	WaitFor(t, 10*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return fmt.Errorf("%s at %s: %w", what, addr, err)
		}
		return c.Close()
	})
}
