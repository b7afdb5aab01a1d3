// Package natsd runs an embedded nats-server with JetStream, the default
// broker of evflow's zero-setup mode and of its tests.
package natsd

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults of [Config].
const (
	DefaultHost         = "127.0.0.1"
	DefaultReadyTimeout = 10 * time.Second
)

// Config configures an embedded server.
type Config struct {
	// Dir is the JetStream store directory (file storage). Required.
	Dir string
	// Host and Port to listen on for clients; Port -1 picks a free port,
	// 0 means the NATS default (4222).
	Host string
	Port int
	// Name is the server name (must be unique in a cluster).
	Name string
	// Cluster joins a cluster when Cluster.Name is set.
	Cluster ClusterConfig
}

// ClusterConfig configures clustering of an embedded server.
type ClusterConfig struct {
	Name string
	// Host and Port to listen on for routes (Port -1 picks a free port).
	Host string
	Port int
	// Routes are the other nodes' route URLs, such as nats://127.0.0.1:6222.
	Routes []string
}

// Start starts a server and waits until it accepts connections.
func Start(cfg Config) (*server.Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("natsd: Dir is required")
	}
	if cfg.Host == "" {
		cfg.Host = DefaultHost
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		NoSigs:     true,
		NoLog:      true,
	}
	if cfg.Cluster.Name != "" {
		opts.Cluster = server.ClusterOpts{Name: cfg.Cluster.Name, Host: cfg.Cluster.Host, Port: cfg.Cluster.Port}
		if opts.Cluster.Host == "" {
			opts.Cluster.Host = cfg.Host
		}
		routes := server.RoutesFromStr(joinComma(cfg.Cluster.Routes))
		opts.Routes = routes
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsd: new server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(DefaultReadyTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("natsd: server not ready after %s", DefaultReadyTimeout)
	}
	return s, nil
}

func joinComma(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}
