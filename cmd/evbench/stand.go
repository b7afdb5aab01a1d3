package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/evflow/evflow/infra/ferret"
	"github.com/evflow/evflow/infra/natsd"
)

// stand is what the benchmark runs against, all on loopback: an embedded
// nats-server (file storage, reached over TCP: the in-process connection
// is a slow path), a redis-server process, and FerretDB, started on first
// use.
type stand struct {
	log   *slog.Logger
	dir   string
	nats  *server.Server
	redis *exec.Cmd
	// RedisAddr is the redis-server's host:port.
	RedisAddr string
	ferret    *ferret.Server
}

func startStand(ctx context.Context, log *slog.Logger) (*stand, error) {
	dir, err := os.MkdirTemp("", "evbench-")
	if err != nil {
		return nil, err
	}
	st := &stand{log: log, dir: dir}
	if st.nats, err = natsd.Start(natsd.Config{Dir: filepath.Join(dir, "nats"), Port: -1}); err != nil {
		st.Close()
		return nil, err
	}
	if err := st.startRedis(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// NATSURL is the client URL of the nats-server.
func (st *stand) NATSURL() string { return st.nats.ClientURL() }

func (st *stand) startRedis(ctx context.Context) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("redis-server not found on PATH: install it (apt-get install redis-server; `go tool task bench` does)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	st.RedisAddr = "127.0.0.1:" + strconv.Itoa(port)
	dir := filepath.Join(st.dir, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	st.redis = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := st.redis.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", st.RedisAddr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("redis-server on %s: %w", st.RedisAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MongoURI starts FerretDB on first use and returns its URI.
func (st *stand) MongoURI() (string, error) {
	if st.ferret == nil {
		s, err := ferret.Start(filepath.Join(st.dir, "mongo"), st.log)
		if err != nil {
			return "", err
		}
		st.ferret = s
	}
	return st.ferret.URI(), nil
}

// Close stops everything and removes the data.
func (st *stand) Close() {
	if st.ferret != nil {
		st.ferret.Close()
	}
	if st.redis != nil && st.redis.Process != nil {
		_ = st.redis.Process.Kill()
		_ = st.redis.Wait()
	}
	if st.nats != nil {
		st.nats.Shutdown()
		st.nats.WaitForShutdown()
	}
	_ = os.RemoveAll(st.dir)
}
