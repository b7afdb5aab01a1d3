package natsd_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/infra/natsd"
	"github.com/evflow/evflow/infra/testenv"
)

func TestStartRejectsInvalidConfig(t *testing.T) {
	cluster := func(c natsd.ClusterConfig) natsd.Config {
		return natsd.Config{Dir: t.TempDir(), Port: -1, Name: "n1", Cluster: c}
	}
	for _, tc := range []struct {
		name string
		cfg  natsd.Config
		want []string
	}{
		{"no dir", natsd.Config{Port: -1}, []string{"Dir is required"}},
		{"cluster without name, port or routes",
			natsd.Config{Dir: t.TempDir(), Port: -1, Cluster: natsd.ClusterConfig{Name: "c"}},
			[]string{"Name is required", "Cluster.Port is required", "Cluster.Routes needs at least one"}},
		{"route without port", cluster(natsd.ClusterConfig{Name: "c", Port: -1, Routes: []string{"nats://127.0.0.1"}}),
			[]string{`"nats://127.0.0.1": want nats://host:port`}},
		{"unparsable route", cluster(natsd.ClusterConfig{Name: "c", Port: -1, Routes: []string{"nats://[::1"}}),
			[]string{`Cluster.Routes: "nats://[::1"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := natsd.Start(tc.cfg)
			if err == nil {
				s.Shutdown()
				t.Fatal("Start succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNodesRouteOverBareHostPortRoutes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	route := []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	// b routes only to itself (ignored); a finds b through the same route.
	b := start(t, natsd.Config{Dir: t.TempDir(), Port: -1, Name: "b",
		Cluster: natsd.ClusterConfig{Name: "c", Port: port, Routes: route}})
	a := start(t, natsd.Config{Dir: t.TempDir(), Port: -1, Name: "a",
		Cluster: natsd.ClusterConfig{Name: "c", Port: -1, Routes: route}})
	testenv.WaitFor(t, 10*time.Second, func() error {
		if a.NumRoutes() == 0 || b.NumRoutes() == 0 {
			return fmt.Errorf("routes: a has %d, b has %d", a.NumRoutes(), b.NumRoutes())
		}
		return nil
	})
}

func start(t *testing.T, cfg natsd.Config) *server.Server {
	t.Helper()
	s, err := natsd.Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func TestClusterOfThreeStoresAStreamOnEveryNode(t *testing.T) {
	c := testenv.StartNATSCluster(t, 3)
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3})
	if err != nil {
		t.Fatalf("create R3 stream: %v", err)
	}
	if _, err := js.Publish(ctx, "r3.x", []byte("x")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	leader := c.StreamLeader(t, "R3")
	testenv.WaitFor(t, 10*time.Second, func() error {
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader != leader.Name() || len(info.Cluster.Replicas) != 2 {
			return fmt.Errorf("leader %s and 2 replicas, got %+v", leader.Name(), info.Cluster)
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current {
				return fmt.Errorf("replica %s current", r.Name)
			}
		}
		return nil
	})
}
