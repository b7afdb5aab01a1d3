// Package testenv starts the real components evflow's tests run against:
// an embedded nats-server with JetStream, a real redis-server process, and
// a FerretDB process speaking the MongoDB wire protocol. Every helper takes
// a testing.TB, registers its own cleanup, and fails the test with a clear
// message when a component is missing; nothing is skipped.
package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/evflow/evflow/infra/natsd"
)

// NATS is an embedded single-node nats-server with JetStream.
type NATS struct {
	*server.Server
	Dir string
	cfg natsd.Config
}

// URL is the client URL of the server.
func (n *NATS) URL() string { return n.ClientURL() }

// StartNATS starts an embedded nats-server with JetStream storing in a
// temporary directory, shut down when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	return StartNATSWith(t, natsd.Config{})
}

// StartNATSWith is [StartNATS] with cfg, such as its Auth and TLS; an
// empty Dir is a temporary directory, Port 0 a free port.
func StartNATSWith(t testing.TB, cfg natsd.Config) *NATS {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	s, err := natsd.Start(cfg)
	if err != nil {
		t.Fatalf("testenv: start nats-server: %v", err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return &NATS{Server: s, Dir: cfg.Dir, cfg: cfg}
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
	cfg := n.cfg
	cfg.Dir, cfg.Port = n.Dir, port
	s, err := natsd.Start(cfg)
	if err != nil {
		t.Fatalf("testenv: restart nats-server: %v", err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return &NATS{Server: s, Dir: n.Dir, cfg: cfg}
}

// Redis is a redis-server process on a free loopback port, without persistence.
type Redis struct {
	Addr string
	t    testing.TB
	mu   sync.Mutex
	cmd  *exec.Cmd
	args []string // extra arguments, such as --replicaof
}

// StartRedis starts a real redis-server on a free port, killed when the test
// ends. It fails the test if redis-server is not installed.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return StartRedisWith(t, RedisOptions{})
}

func (r *Redis) start(bin string) {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	dir := r.t.TempDir()
	cmd := exec.Command(bin, append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log")}, r.args...)...)
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

// Mongo is a FerretDB (SQLite backend) speaking the MongoDB wire protocol,
// run as a process of its own (see [StartMongo]).
type Mongo struct {
	uri string
	// Dir holds its SQLite files.
	Dir string
}

// URI is the MongoDB connection string of the server.
func (m *Mongo) URI() string { return m.uri }

// StartMongo starts evflow's embedded FerretDB as a separate process
// (command ferretd, built without the race detector through the module's
// tool directive) storing in a temporary directory, stopped when the test
// ends. Out of the test process, a test run with -race does not
// instrument FerretDB's SQLite, which makes it about 15 times slower.
func StartMongo(t testing.TB) *Mongo {
	t.Helper()
	return StartMongoWith(t, MongoOptions{})
}

// MongoOptions secure the FerretDB [StartMongoWith] starts.
type MongoOptions struct {
	// TLS, when set, makes FerretDB listen with TLS alone, with a
	// certificate of this CA for loopback; [Mongo.URI] then says tls=true
	// and names the CA's file in tlsCAFile.
	TLS *CA
}

// StartMongoWith is [StartMongo] with FerretDB secured by opts.
func StartMongoWith(t testing.TB, opts MongoOptions) *Mongo {
	t.Helper()
	bin := ferretdBinary(t)
	dir := t.TempDir()
	stderr := new(Buffer)
	args := []string{"-dir", dir}
	if opts.TLS != nil {
		cert := opts.TLS.Server()
		args = append(args, "-tls-cert", cert.CertFile, "-tls-key", cert.KeyFile)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe() // closed when this process dies: ferretd then exits
	if err != nil {
		t.Fatalf("testenv: ferretd: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("testenv: ferretd: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start ferretd: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	uri := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		uri <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-uri:
		if u == "" {
			t.Fatalf("testenv: ferretd exited before listening: %s", stderr.String())
		}
		if opts.TLS != nil {
			u += "&tlsCAFile=" + url.QueryEscape(opts.TLS.CertFile)
		}
		return &Mongo{uri: u, Dir: dir}
	case <-time.After(30 * time.Second):
		t.Fatalf("testenv: ferretd not listening after 30s: %s", stderr.String())
		return nil
	}
}

var ferretd struct {
	once sync.Once
	path string
	err  error
}

// ferretdBinary builds ferretd once per test process; go tool caches the
// executable, so later test processes find it built.
func ferretdBinary(t testing.TB) string {
	t.Helper()
	ferretd.once.Do(func() {
		out, err := exec.Command("go", "tool", "-n", "ferretd").Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, ee.Stderr)
			}
			ferretd.err = err
			return
		}
		ferretd.path = strings.TrimSpace(string(out))
	})
	if ferretd.err != nil {
		t.Fatalf("testenv: build ferretd (go tool -n ferretd): %v", ferretd.err)
	}
	return ferretd.path
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
