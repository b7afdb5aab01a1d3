package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// RedisSentinel is a Redis primary, one replica and a Sentinel watching
// them, all real redis-server processes: the high-availability mode evflow
// supports.
type RedisSentinel struct {
	// Primary and Replica are the data servers; after a failover the
	// replica is the primary.
	Primary, Replica *Redis
	// Link carries the replica's replication connection to the primary:
	// black-holing it partitions them without either noticing.
	Link *Proxy
	// Sentinel is the Sentinel's host:port; MasterSet the name it
	// monitors the primary under.
	Sentinel  string
	MasterSet string
	opts      RedisOptions
}

// StartRedisSentinel starts a primary, a replica of it and a Sentinel that
// declares the primary down after 1s and fails over to the replica. They
// are killed when the test ends.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	return StartRedisSentinelWith(t, RedisOptions{})
}

// StartRedisSentinelWith is [StartRedisSentinel] with the primary and the
// replica secured by opts (Password, Username, TLS, replication included),
// and the Sentinel by opts.SentinelPassword and opts.TLS.
func StartRedisSentinelWith(t testing.TB, opts RedisOptions) *RedisSentinel {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testenv: redis-server not found on PATH: install it with `apt-get install redis-server`")
	}
	rs := &RedisSentinel{MasterSet: "evflow", opts: opts}
	rs.Primary = &Redis{Addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), t: t}
	rs.Primary.args = opts.args(t, rs.Primary.Addr)
	rs.Primary.start(bin)
	t.Cleanup(rs.Primary.Stop)
	_, primaryPort, _ := net.SplitHostPort(rs.Primary.Addr)
	rs.Link = StartProxy(t, rs.Primary.Addr)
	_, linkPort, _ := net.SplitHostPort(rs.Link.Addr)
	rs.Replica = &Redis{Addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), t: t}
	rs.Replica.args = append(opts.args(t, rs.Replica.Addr), "--replicaof", "127.0.0.1", linkPort)
	rs.Replica.start(bin)
	t.Cleanup(rs.Replica.Stop)
	rs.waitReplicating(t)

	port := freePort(t)
	rs.Sentinel = "127.0.0.1:" + strconv.Itoa(port)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %s 1\n"+
		"sentinel down-after-milliseconds %[3]s 1000\nsentinel failover-timeout %[3]s 5000\n",
		port, dir, rs.MasterSet, primaryPort)
	if opts.TLS != nil {
		cert := opts.TLS.Server()
		body += fmt.Sprintf("port 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n"+
			"tls-auth-clients no\ntls-replication yes\n", port, cert.CertFile, cert.KeyFile, opts.TLS.CertFile)
	}
	if opts.Username != "" {
		body += fmt.Sprintf("sentinel auth-user %s %s\n", rs.MasterSet, opts.Username)
	}
	if opts.Password != "" {
		body += fmt.Sprintf("sentinel auth-pass %s %s\n", rs.MasterSet, opts.Password)
	}
	if opts.SentinelPassword != "" {
		body += fmt.Sprintf("requirepass %s\n", opts.SentinelPassword)
	}
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatalf("testenv: sentinel config: %v", err)
	}
	cmd := exec.Command(bin, conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start redis sentinel: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitDial(t, rs.Sentinel, "redis sentinel")
	return rs
}

// waitReplicating waits until the replica's link to the primary is up.
func (rs *RedisSentinel) waitReplicating(t testing.TB) {
	t.Helper()
	opt := rueidis.ClientOption{InitAddress: []string{rs.Replica.Addr}, DisableCache: true, ForceSingleClient: true,
		Username: rs.opts.Username, Password: rs.opts.Password}
	if rs.opts.TLS != nil {
		opt.TLSConfig = &tls.Config{RootCAs: rs.opts.TLS.Pool, MinVersion: tls.VersionTLS12}
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("testenv: redis replica: %v", err)
	}
	defer c.Close()
	WaitFor(t, 15*time.Second, func() error {
		info, err := c.Do(context.Background(), c.B().Info().Section("replication").Build()).ToString()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica %s not replicating yet", rs.Replica.Addr)
		}
		return nil
	})
}
