package testenv

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/evflow/evflow/infra/natsd"
)

// Names and limits of [StartNATSCluster].
const (
	// ClusterName is the name of every cluster StartNATSCluster forms.
	ClusterName = "evflow-test"
	// GlobalAccount is the account clients use when the server configures
	// none; pass it to [NATSCluster.StreamLeader].
	GlobalAccount = "$G"
	// ClusterReadyTimeout bounds the wait for a JetStream meta leader that
	// sees every node, and for a stream leader.
	ClusterReadyTimeout = 30 * time.Second
)

// NATSCluster is a JetStream cluster of embedded nats-servers on loopback,
// each node with its own store directory, free client port and fixed route
// port.
type NATSCluster struct {
	// Servers are the nodes, in start order; a node shut down by
	// [NATSCluster.Shutdown] stays in the slice, no longer running.
	Servers []*server.Server
	urls    string
}

// StartNATSCluster starts a cluster of n nodes (n >= 2; 3 for R3 streams)
// and waits until its JetStream meta group has a leader that sees all n
// peers and every node is current, so replicated streams can be created
// right away. Every node is shut down when the test ends.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	if n < 2 {
		t.Fatalf("testenv: a NATS cluster needs at least 2 nodes, asked for %d", n)
	}
	// Hold every route port until its node starts: n distinct ports, and
	// only a short window in which another process could take one.
	listeners := make([]net.Listener, n)
	routes := make([]string, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: free route port: %v", err)
		}
		t.Cleanup(func() { _ = l.Close() })
		listeners[i] = l
		routes[i] = "nats://" + l.Addr().String()
	}
	dirs := make([]string, n)
	for i := range n {
		dirs[i] = t.TempDir() // before the shutdown cleanup, so removed after it
	}
	c := &NATSCluster{}
	t.Cleanup(c.shutdownAll)
	for i := range n {
		port := listeners[i].Addr().(*net.TCPAddr).Port
		_ = listeners[i].Close()
		s, err := natsd.Start(natsd.Config{
			Dir:     dirs[i],
			Port:    -1,
			Name:    "n" + strconv.Itoa(i+1),
			Cluster: natsd.ClusterConfig{Name: ClusterName, Port: port, Routes: routes},
		})
		if err != nil {
			t.Fatalf("testenv: start cluster node %d of %d: %v", i+1, n, err)
		}
		c.Servers = append(c.Servers, s)
	}
	urls := make([]string, n)
	for i, s := range c.Servers {
		urls[i] = s.ClientURL()
	}
	c.urls = strings.Join(urls, ",")
	WaitFor(t, ClusterReadyTimeout, c.ready)
	return c
}

// URLs returns the client URLs of all nodes, comma-separated as
// nats.Connect takes them (nodes shut down included).
func (c *NATSCluster) URLs() string { return c.urls }

// Running returns the nodes that are still running.
func (c *NATSCluster) Running() []*server.Server {
	var up []*server.Server
	for _, s := range c.Servers {
		if s.Running() {
			up = append(up, s)
		}
	}
	return up
}

// StreamLeader returns the running node that leads stream of the
// [GlobalAccount], waiting up to [ClusterReadyTimeout] for one to be
// elected; it fails the test if none is.
func (c *NATSCluster) StreamLeader(t testing.TB, stream string) *server.Server {
	t.Helper()
	var leader *server.Server
	WaitFor(t, ClusterReadyTimeout, func() error {
		for _, s := range c.Running() {
			if s.JetStreamIsStreamLeader(GlobalAccount, stream) {
				leader = s
				return nil
			}
		}
		return fmt.Errorf("no running node leads stream %s", stream)
	})
	return leader
}

// Shutdown stops node s, one of c.Servers, and waits until it is down, as a
// fault would take it away. Its store directory is kept until the test ends.
func (c *NATSCluster) Shutdown(t testing.TB, s *server.Server) {
	t.Helper()
	if !slices.Contains(c.Servers, s) {
		t.Fatalf("testenv: server %s is not a node of this cluster", s.Name())
	}
	s.Shutdown()
	s.WaitForShutdown()
}

// ready reports whether a meta leader sees every node and all running
// nodes are current with the meta group.
func (c *NATSCluster) ready() error {
	var leader *server.Server
	for _, s := range c.Servers {
		if s.JetStreamIsLeader() {
			leader = s
		}
	}
	if leader == nil {
		return fmt.Errorf("no JetStream meta leader among %d nodes", len(c.Servers))
	}
	if peers := leader.JetStreamClusterPeers(); len(peers) != len(c.Servers) {
		return fmt.Errorf("meta leader %s sees peers %v, want %d", leader.Name(), peers, len(c.Servers))
	}
	for _, s := range c.Servers {
		if !s.JetStreamIsCurrent() {
			return fmt.Errorf("node %s is not current with the meta group", s.Name())
		}
	}
	return nil
}

func (c *NATSCluster) shutdownAll() {
	for _, s := range c.Servers {
		s.Shutdown()
	}
	for _, s := range c.Servers {
		s.WaitForShutdown()
	}
}
