package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evflow/evflow/infra/testenv"
)

// TestServeEmbeddedAnswersAndStopsCleanlyOnSIGTERM runs the real binary
// with no external services, as the README's first command does.
func TestServeEmbeddedAnswersAndStopsCleanlyOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "evflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	srv := exec.Command(bin, "serve", "--data-dir", t.TempDir(), "--http-addr", addr, "--nats-port", "-1", "--admin-api")
	stderr, _ := srv.StderrPipe()
	if err := srv.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	var logs logBuffer
	go logs.copy(stderr)
	t.Cleanup(func() { _ = srv.Process.Kill() })

	base := "http://" + addr
	testenv.WaitFor(t, 60*time.Second, func() error {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	body := `{"type":"app.create","tenant":"acme","app_id":"weather","name":"Weather"}`
	resp, err := http.Post(base+"/v1/commands", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("create: %v %v\n%s", resp, err, logs.String())
	}
	resp.Body.Close()
	testenv.WaitFor(t, 30*time.Second, func() error {
		resp, err := http.Get(base + "/v1/apps/weather")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("app: %s", resp.Status)
		}
		return nil
	})

	// The operator commands work against it.
	for _, args := range [][]string{{"status"}, {"dlq", "list"}, {"dlq", "redrive"}} {
		out, err := exec.Command(bin, append(args, "--addr", base)...).CombinedOutput()
		want := map[string]string{"status": "dead letters waiting", "list": "SEQ", "redrive": "redis: 0 redriven, 0 kept"}[args[len(args)-1]]
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("evflow %v: %v\n%s\nwant %q in it", args, err, out, want)
		}
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve still running 30s after SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Fatalf("no clean stop in the log:\n%s", logs.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// logBuffer collects a process's output for failure messages.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) copy(r io.Reader) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		b.mu.Lock()
		b.buf.WriteString(s.Text() + "\n")
		b.mu.Unlock()
	}
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
